"""The audit trail on SQL: chain records onto the head of `audit_log`, store them, verify.

Appends run in the unit of work's write transaction, which is serialised like the ledger's
(BEGIN IMMEDIATE on SQLite, the ledger's advisory lock on PostgreSQL: see `engine`), so the
head read before an append stays the head until the commit and two writers never fork the
chain; a rolled-back transaction takes its audit records with it.
"""

from collections.abc import Callable, Iterator
from typing import Final

from sqlalchemy import Connection, insert, select

from stepout.adapters.db.rows import stream
from stepout.adapters.db.tables import AuditRow
from stepout.crypto.keys import Keys
from stepout.domain.audit_trail import (
    GENESIS,
    AuditEntry,
    VerifyResult,
    canonical_audit,
    entry_hash,
    verify_audit_chain,
)
from stepout.domain.instants import now
from stepout.services.audit import AuditRecord

A: Final = AuditRow.__table__.c
COLUMNS: Final = (
    "seq", "recorded_us", "practice", "actor", "action", "target", "outcome", "origin",
    "channel", "item_count", "prev_hash", "hash",
)  # fmt: skip


class ReadOnlyAudit(RuntimeError):
    """An audit record in a unit of work opened for reading."""


def read_head(conn: Connection) -> tuple[int, str]:
    """The last entry's (seq, hash), or (0, GENESIS) for an empty trail."""
    row = conn.execute(select(A.seq, A.hash).order_by(A.seq.desc()).limit(1)).first()
    return (0, GENESIS) if row is None else (row[0], row[1])


def chain_one(record: AuditRecord, seq: int, prev: str, recorded_us: int, key: bytes) -> AuditEntry:
    """`record` as the entry that follows (seq - 1, prev), hashed with the chain `key`."""
    r = record
    canonical = canonical_audit(
        seq, recorded_us, r.practice, r.actor, r.action, r.target, r.outcome, r.origin,
        r.channel, r.count,
    )  # fmt: skip
    return AuditEntry(
        seq, recorded_us, r.practice, r.actor, r.action, r.target, r.outcome, r.origin,
        r.channel, r.count, prev, entry_hash(key, prev, canonical),
    )  # fmt: skip


def entries(conn: Connection) -> Iterator[AuditEntry]:
    """Every entry, in `seq` order, streamed."""
    make = AuditEntry._make
    for row in stream(conn, select(*(A[c] for c in COLUMNS)).order_by(A.seq)):
        yield make(row)


def verify(conn: Connection, key: bytes) -> VerifyResult:
    return verify_audit_chain(entries(conn), key)


class SqlAudit:
    """The AuditTrail port: append records to `audit_log` in the unit of work's transaction."""

    def __init__(
        self,
        conn: Connection,
        keys: Keys,
        *,
        writable: bool = True,
        settle: Callable[[], None] | None = None,
    ) -> None:
        self._conn = conn
        self._keys = keys
        self._writable = writable
        self._settle = settle
        self._staged: list[AuditRecord | Callable[[], AuditRecord]] = []

    def record(self, entry: AuditRecord) -> None:
        if not self._writable:
            raise ReadOnlyAudit("this unit of work was opened read-only: it cannot audit")
        if self._settle is not None:
            self._settle()  # the ledger's pending bulk writes first
        seq, prev = read_head(self._conn)
        row = chain_one(entry, seq + 1, prev, now(), self._keys.chain_key)
        self._conn.execute(insert(AuditRow), dict(zip(COLUMNS, row, strict=True)))

    def at_commit(self, entry: AuditRecord | Callable[[], AuditRecord]) -> None:
        self._staged.append(entry)

    def flush(self) -> None:
        """Record what `at_commit` staged (the unit of work calls this as it commits)."""
        staged, self._staged = self._staged, []
        for entry in staged:
            self.record(entry if isinstance(entry, AuditRecord) else entry())

    def reset(self) -> None:
        """Forget staged records (after a rollback, or when the unit of work ends)."""
        self._staged = []
