"""The ledger's hash chain: what an entry's hash covers, and how to find the first break.

Each entry's hash is an HMAC-SHA256, keyed with the chain key derived from the key file
outside the database, over the previous entry's hash and the canonical bytes of the entry
itself (`canonical_entry`). The first entry links to GENESIS. Changing, deleting, inserting or
reordering any stored entry breaks the chain at that entry or the next one, and someone with
the database but not the key file cannot recompute a hash to hide it. Deleting entries from
the end leaves no trace in the chain alone: a signed checkpoint of the head catches that.
"""

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import orjson

GENESIS = "0" * 64  # the `prev_hash` of the first entry


def canonical_data(data: dict[str, Any]) -> bytes:
    """An event's data as canonical JSON: keys sorted, no whitespace, UTF-8."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def canonical_entry(
    seq: int,
    kind: str,
    practice: str,
    subject: str,
    at: int,
    actor: str | None,
    data: bytes,
    recorded_us: int,
) -> bytes:
    """The bytes an entry's hash covers. `data` is the entry's canonical JSON, as stored."""
    return orjson.dumps(
        [seq, kind, practice, subject, at, actor, orjson.Fragment(data), recorded_us]
    )


def entry_hash(key: bytes, prev_hash: str, canonical_bytes: bytes) -> str:
    """The hash of an entry that follows `prev_hash` (lowercase hex), keyed with `key`."""
    return hmac.new(key, prev_hash.encode("ascii") + canonical_bytes, hashlib.sha256).hexdigest()


class LedgerEntry(NamedTuple):
    """One stored entry, in the column order of the `events` table."""

    seq: int
    recorded_us: int
    kind: str
    practice: str
    subject: str
    at: int
    actor: str | None
    data: str
    prev_hash: str
    hash: str

    def canonical(self) -> bytes:
        return canonical_entry(
            self.seq,
            self.kind,
            self.practice,
            self.subject,
            self.at,
            self.actor,
            self.data.encode("utf-8"),
            self.recorded_us,
        )


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int  # the first entry that is missing or does not verify
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    checked: int  # entries that verified before the break (all of them when intact)
    first_broken: int | None = None
    reason: str | None = None
    head: str = GENESIS  # the hash of the last entry that verified

    @property
    def ok(self) -> bool:
        return self.first_broken is None


class Chained(Protocol):
    """A stored entry of a chain: the ledger's (`LedgerEntry`) or the audit trail's."""

    @property
    def seq(self) -> int: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...
    def canonical(self) -> bytes: ...


def verify_chain(entries: Iterable[Chained], key: bytes, *, noun: str = "entry") -> VerifyResult:
    """Walk the entries in `seq` order, from the first, and stop at the first break. `noun`
    names an entry in the reasons ("audit entry 7 is missing")."""
    prev, expected, checked = GENESIS, 1, 0
    for entry in entries:
        problem = _problem(key, entry, prev, expected, noun)
        if problem is not None:
            return VerifyResult(checked, problem.seq, problem.reason, prev)
        prev, expected, checked = entry.hash, expected + 1, checked + 1
    return VerifyResult(checked, head=prev)


def _problem(key: bytes, entry: Chained, prev: str, expected: int, noun: str) -> ChainBreak | None:
    if entry.seq != expected:
        if entry.seq > expected:
            return ChainBreak(expected, f"{noun} {expected} is missing (next is {entry.seq})")
        return ChainBreak(expected, f"{noun} {entry.seq} appears again after {expected - 1}")
    if entry.prev_hash != prev:
        return ChainBreak(entry.seq, f"prev_hash does not match the previous {noun}'s hash")
    if not hmac.compare_digest(entry.hash, entry_hash(key, prev, entry.canonical())):
        return ChainBreak(entry.seq, f"hash does not match the {noun}'s content")
    return None
