"""Changing the chained tables behind the application's back, as someone with the database's
owner rights could: first lift the append-only guard (migration 0006), then edit rows.

Shared by the tamper tests (tests/integration/test_tamper.py) and their long version
(bench/tamper.py)."""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, text

from stepout.domain.audit_trail import AuditEntry
from stepout.domain.chain import LedgerEntry

if TYPE_CHECKING:
    from stepout.adapters.db import Database


def lift_append_only(conn: Connection, table: str) -> None:
    """Drop (SQLite) or disable (PostgreSQL) the table's append-only triggers."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    else:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))


@dataclass(frozen=True)
class ChainTable:
    """A chained table: its name in `stepout verify`'s output and the checkpoint, its SQL
    table, a text column and another column to flip, and how a row becomes an entry."""

    chain: str  # "ledger" or "audit"
    table: str
    text_column: str  # a text column whose bytes the hash covers
    other_column: str  # another column the hash covers (a number)
    entry: Callable[[Any], LedgerEntry | AuditEntry]


LEDGER: Final = ChainTable("ledger", "events", "data", "at_us", LedgerEntry._make)
AUDIT: Final = ChainTable("audit", "audit_log", "action", "recorded_us", AuditEntry._make)
CHAINS: Final = (LEDGER, AUDIT)


def count(conn: Connection, chain: ChainTable) -> int:
    return int(conn.execute(text(f"SELECT COUNT(*) FROM {chain.table}")).scalar_one())


def row(conn: Connection, chain: ChainTable, seq: int) -> Any:
    return conn.execute(text(f"SELECT * FROM {chain.table} WHERE seq = :s"), {"s": seq}).one()


def flip(value: str, at: int = 0) -> str:
    """`value` with one character changed (one byte flipped, kept printable)."""
    i = at % len(value)
    c = value[i]
    swapped = chr(ord(c) ^ 1) if c.isalnum() else ("a" if c != "a" else "b")
    return value[:i] + swapped + value[i + 1 :]


def set_column(conn: Connection, chain: ChainTable, seq: int, column: str, value: Any) -> None:
    lift_append_only(conn, chain.table)
    conn.execute(
        text(f'UPDATE {chain.table} SET "{column}" = :v WHERE seq = :s'), {"v": value, "s": seq}
    )


def flip_byte(conn: Connection, chain: ChainTable, seq: int, column: str) -> None:
    """Change one byte of `column` in entry `seq` (a number column: its last digit)."""
    found = row(conn, chain, seq)._mapping[column]
    if isinstance(found, int):
        set_column(conn, chain, seq, column, found ^ 1)
    else:
        set_column(conn, chain, seq, column, flip(found, len(found) // 2))


def delete(conn: Connection, chain: ChainTable, seq: int) -> None:
    lift_append_only(conn, chain.table)
    conn.execute(text(f"DELETE FROM {chain.table} WHERE seq = :s"), {"s": seq})


def truncate_tail(conn: Connection, chain: ChainTable, keep: int) -> None:
    lift_append_only(conn, chain.table)
    conn.execute(text(f"DELETE FROM {chain.table} WHERE seq > :k"), {"k": keep})


def swap(conn: Connection, chain: ChainTable, a: int, b: int) -> None:
    """Reorder two entries: each takes the other's `seq`."""
    lift_append_only(conn, chain.table)
    t = chain.table
    conn.execute(text(f"UPDATE {t} SET seq = -:b WHERE seq = :a"), {"a": a, "b": b})
    conn.execute(text(f"UPDATE {t} SET seq = -:a WHERE seq = :b"), {"a": a, "b": b})
    conn.execute(text(f"UPDATE {t} SET seq = -seq WHERE seq < 0"))


def plain_sha256(_key: bytes, prev: str, canonical: bytes) -> str:
    """The hash of an unkeyed chain: what someone without the key file can compute."""
    return hashlib.sha256(prev.encode("ascii") + canonical).hexdigest()


def hmac_with(key: bytes, prev: str, canonical: bytes) -> str:
    return hmac.new(key, prev.encode("ascii") + canonical, hashlib.sha256).hexdigest()


def forge(
    conn: Connection,
    chain: ChainTable,
    seq: int,
    digest: Callable[[bytes, str, bytes], str],
    key: bytes = b"",
) -> None:
    """Change entry `seq`'s text column and store a hash recomputed over the new content with
    `digest` (plain SHA-256, or an HMAC under a key that is not the installation's)."""
    entry = chain.entry(tuple(row(conn, chain, seq)))
    changed = entry._replace(**{chain.text_column: flip(getattr(entry, chain.text_column))})
    new_hash = digest(key, changed.prev_hash, changed.canonical())
    lift_append_only(conn, chain.table)
    conn.execute(
        text(f'UPDATE {chain.table} SET "{chain.text_column}" = :v, hash = :h WHERE seq = :s'),
        {"v": getattr(changed, chain.text_column), "h": new_hash, "s": seq},
    )


def forge_appended(
    conn: Connection, chain: ChainTable, digest: Callable[[bytes, str, bytes], str], key: bytes
) -> int:
    """Append an entry after the last one, a copy of it chained with `digest`: no guard to
    lift (the triggers allow inserts). Returns its seq."""
    last = count(conn, chain)
    found = row(conn, chain, last)
    entry = chain.entry(tuple(found))
    new = entry._replace(seq=last + 1, prev_hash=entry.hash)
    new = new._replace(hash=digest(key, new.prev_hash, new.canonical()))
    names = list(found._mapping.keys())  # the table's columns, in the entry's field order
    columns = ", ".join(f'"{c}"' for c in names)
    values = ", ".join(f":v{i}" for i in range(len(names)))
    conn.execute(
        text(f"INSERT INTO {chain.table} ({columns}) VALUES ({values})"),
        {f"v{i}": v for i, v in enumerate(new)},
    )
    return last + 1


def rewrite_from(conn: Connection, chain: ChainTable, seq: int, key: bytes) -> None:
    """Change entry `seq` and re-chain it and every later entry with `key`: what someone
    holding the key file could do. The chain verifies; only a checkpoint tells."""
    from stepout.domain.chain import GENESIS

    prev = GENESIS if seq == 1 else row(conn, chain, seq - 1).hash
    later = conn.execute(
        text(f"SELECT * FROM {chain.table} WHERE seq >= :s ORDER BY seq"), {"s": seq}
    ).all()
    lift_append_only(conn, chain.table)
    for found in later:
        entry = chain.entry(tuple(found))
        if entry.seq == seq:
            entry = entry._replace(**{chain.text_column: flip(getattr(entry, chain.text_column))})
        entry = entry._replace(prev_hash=prev)
        entry = entry._replace(hash=hmac_with(key, prev, entry.canonical()))
        conn.execute(
            text(
                f'UPDATE {chain.table} SET "{chain.text_column}" = :v, prev_hash = :p, hash = :h '
                "WHERE seq = :s"
            ),
            {"v": getattr(entry, chain.text_column), "p": prev, "h": entry.hash, "s": entry.seq},
        )
        prev = entry.hash


# A real database to attack: synthetic records imported, a few live sessions through the
# workflow, and reads recorded in the audit trail.

PRACTICE: Final = "demo"  # the synthetic generator's practice
ALL_SAFEGUARDS: Final = ("records_secured", "screen_locked", "door_closed")


def populate(db: "Database", *, sessions: int = 300, live: int = 5, reads: int = 300) -> None:
    """Import `sessions` synthetic sessions, run `live` sessions with an exit each through
    the workflow, and record `reads` reads of sessions in the audit trail."""
    import io

    from stepout.services.audit import cli_caller
    from stepout.services.importing import import_records
    from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

    buffer = io.BytesIO()
    write_jsonl(generate(GeneratorConfig(sessions=sessions, seed=7)), buffer)
    buffer.seek(0)
    with db.uow() as uow:
        import_records(uow, buffer, actor="tamper-test")
    for i in range(live):
        live_session(db, f"t-live-{i}")
    caller = cli_caller(PRACTICE)
    with db.uow() as uow:
        for i in range(reads):
            uow.audit.record(caller.record("session.read", f"s-{i % max(sessions, 1) + 1:07d}"))
        uow.commit()


def live_session(db: "Database", therapist: str) -> str:
    """A session from start to end with one signed exit, through the workflow, each command
    with its audit record (the therapist on the API); its exit id."""
    from stepout.domain.commands import DeclareExit, EndSession, Return, SignExit, StartSession
    from stepout.services.audit import Caller
    from stepout.services.workflow import Workflow

    flow, caller = Workflow(db.uow), Caller(therapist, PRACTICE, "127.0.0.1", "api")
    session = flow.run(
        StartSession(
            practice=PRACTICE, actor=therapist, therapist=therapist, client="client-0001",
            room=f"room-{therapist}", modality="telehealth", billed_codes=("90837",),
        ),
        caller=caller,
    ).record.id  # fmt: skip
    exit_id = flow.run(
        DeclareExit(
            practice=PRACTICE, actor=therapist, session=session, reason="technical",
            client_informed="before_leaving", explanation="The video froze; back in a minute.",
            safeguards=ALL_SAFEGUARDS, expected_minutes=1,
        ),
        caller=caller,
    ).record.id  # fmt: skip
    for command in (
        Return(practice=PRACTICE, actor=therapist, exit=exit_id, checked_in=True),
        SignExit(practice=PRACTICE, actor=therapist, exit=exit_id),
        EndSession(practice=PRACTICE, actor=therapist, session=session),
    ):
        flow.run(command, caller=caller)
    return exit_id
