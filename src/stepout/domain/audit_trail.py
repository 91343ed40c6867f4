"""The audit trail's chain: what an audit entry's hash covers, and how to find the first break.

An audit entry says who did what to which record, when, from where and with what outcome; it
carries ids and names only, never health data (see `stepout.services.audit` for the
vocabulary). Entries are chained like the ledger's (`stepout.domain.chain`): each hash is an
HMAC-SHA256, keyed with the chain key derived from the key file, over the previous entry's
hash and the canonical bytes of the entry. The canonical bytes start with a fixed tag
(`DOMAIN`), which no ledger entry's bytes can start with (those open with a number), so an
entry of one chain can never pass for an entry of the other. The first entry links to GENESIS.
"""

from collections.abc import Iterable
from typing import Final, NamedTuple

import orjson

from stepout.domain.chain import GENESIS, ChainBreak, VerifyResult, entry_hash, verify_chain

DOMAIN: Final = "stepout/audit/1"  # the first element of every audit entry's canonical bytes

__all__ = [
    "DOMAIN",
    "GENESIS",
    "AuditEntry",
    "ChainBreak",
    "VerifyResult",
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
    return verify_chain(entries, key, noun="audit entry")
