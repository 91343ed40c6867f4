"""The audit trail's chain: what an audit entry's hash covers, and how to find the first break.

An audit entry says who did what to which record, when, from where and with what outcome; it
carries ids and names only, never health data (see `stepout.services.audit` for the
vocabulary). Entries are chained like the ledger's (`stepout.domain.chain`): each hash is an
HMAC-SHA256, keyed with the chain key derived from the key file, over the previous entry's
hash and the canonical bytes of the entry. The canonical bytes start with a fixed tag
(`DOMAIN`), which no ledger entry's bytes can start with (those open with a number), so an
entry of one chain can never pass for an entry of the other. The first entry links to GENESIS.
"""

import hmac
from collections.abc import Iterable
from typing import Final, NamedTuple

import orjson

from stepout.domain.chain import GENESIS, ChainBreak, VerifyResult, entry_hash

DOMAIN: Final = "stepout/audit/1"  # the first element of every audit entry's canonical bytes

__all__ = [
    "DOMAIN",
    "GENESIS",
    "AuditEntry",
    "ChainBreak",
    "VerifyResult",
    "audit_first_break",
    "canonical_audit",
    "entry_hash",
    "verify_audit_chain",
]


def canonical_audit(
    seq: int,
    recorded_us: int,
    practice: str | None,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    origin: str,
    channel: str,
    item_count: int | None,
) -> bytes:
    """The bytes an audit entry's hash covers: a JSON array, tagged with `DOMAIN`."""
    return orjson.dumps(
        [
            DOMAIN,
            seq,
            recorded_us,
            practice,
            actor,
            action,
            target,
            outcome,
            origin,
            channel,
            item_count,
        ]
    )


class AuditEntry(NamedTuple):
    """One stored audit entry, in the column order of the `audit_log` table."""

    seq: int
    recorded_us: int
    practice: str | None
    actor: str
    action: str
    target: str | None
    outcome: str
    origin: str
    channel: str
    item_count: int | None  # how many records a list read returned, lines an import read
    prev_hash: str
    hash: str

    def canonical(self) -> bytes:
        return canonical_audit(
            self.seq,
            self.recorded_us,
            self.practice,
            self.actor,
            self.action,
            self.target,
            self.outcome,
            self.origin,
            self.channel,
            self.item_count,
        )


def verify_audit_chain(entries: Iterable[AuditEntry], key: bytes) -> VerifyResult:
    """Walk the entries in `seq` order, from the first, and stop at the first break."""
    prev, expected, checked = GENESIS, 1, 0
    for entry in entries:
        problem = _problem(key, entry, prev, expected)
        if problem is not None:
            return VerifyResult(checked, problem.seq, problem.reason, prev)
        prev, expected, checked = entry.hash, expected + 1, checked + 1
    return VerifyResult(checked, head=prev)


def audit_first_break(entries: Iterable[AuditEntry], key: bytes) -> ChainBreak | None:
    """The first audit entry that is missing, misplaced or altered; None when intact."""
    result = verify_audit_chain(entries, key)
    if result.first_broken is None:
        return None
    return ChainBreak(result.first_broken, result.reason or "")


def _problem(key: bytes, entry: AuditEntry, prev: str, expected: int) -> ChainBreak | None:
    if entry.seq != expected:
        if entry.seq > expected:
            return ChainBreak(expected, f"audit entry {expected} is missing (next is {entry.seq})")
        return ChainBreak(expected, f"audit entry {entry.seq} appears again after {expected - 1}")
    if entry.prev_hash != prev:
        return ChainBreak(entry.seq, "prev_hash does not match the previous audit entry's hash")
    if not hmac.compare_digest(entry.hash, entry_hash(key, prev, entry.canonical())):
        return ChainBreak(entry.seq, "hash does not match the audit entry's content")
    return None
