"""The SQLite writer thread: a failed background write undoes everything, is reported at the
next barrier as `append` would report it, and no thread outlives its unit of work."""

import io
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from stepout.adapters.db import Database
from stepout.adapters.db.ledger import Head, SqlLedger, chain
from stepout.domain.chain import GENESIS, canonical_data, canonical_entry, entry_hash
from stepout.domain.events import Event, EvolveError
from stepout.services.importing import import_records
from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl
from tests.integration.builders import at, count, practice, session
from tests.keys import run_keys

TABLES = ("events", "practices", "sessions", "exits", "concerns")


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database (the writer thread is SQLite's)."""
    database = Database.open(f"sqlite:///{tmp_path / 'stepout.db'}", migrate=True, keys=run_keys())
    try:
        yield database
    finally:
        database.dispose()


def _writers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stepout-writer"]


def _counts(db: Database) -> list[int]:
    with db.engine.connect() as conn:
        return [count(conn, t) for t in TABLES]


def _sessions(n: int, *, again: int | None = None) -> list[Event]:
    """A practice and `n` sessions; with `again`, session `again` is recorded a second time
    at the end (a unique constraint the database enforces)."""
    events = [practice(), *(session(f"s{i:05d}", at(i)) for i in range(n))]
    if again is not None:
        events.append(session(f"s{again:05d}", at(n)))
    return events


def test_a_large_append_that_fails_late_is_reported_at_commit_and_leaves_nothing(
    lite: Database,
) -> None:
    big = SqlLedger.CHUNK + 500  # the duplicate lands in the second chunk
    with lite.uow() as uow:
        uow.ledger.append(_sessions(big, again=3))  # its writes may still be running
        with pytest.raises(EvolveError, match=r"session\.recorded: s00003 already exists"):
            uow.commit()
    assert _counts(lite) == [0, 0, 0, 0, 0]
    assert _writers() == []


def test_a_failed_large_append_rolls_back_to_its_savepoint_and_the_unit_stays_usable(
    lite: Database,
) -> None:
    with lite.uow() as uow:
        uow.ledger.append(_sessions(10))
        failing = [session(f"x{i:05d}", at(i)) for i in range(2000)] + [session("s00004", at(1))]
        uow.ledger.append(failing)
        with pytest.raises(EvolveError, match="s00004 already exists"):
            uow.records.session("s00001")  # a read is a barrier: the failure shows here
        assert uow.records.session("x00001") is None  # the failed append left no trace
        uow.ledger.append([session(f"y{i:05d}", at(i)) for i in range(1500)])
        uow.commit()
    assert _counts(lite) == [1 + 10 + 1500, 1, 10 + 1500, 0, 0]
    assert _writers() == []


def test_an_exception_while_writes_are_pending_rolls_everything_back(lite: Database) -> None:
    interval = sys.getswitchinterval()

    def fail() -> None:
        with lite.uow() as uow:
            uow.ledger.append(_sessions(3000))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert _counts(lite) == [0, 0, 0, 0, 0]
    assert _writers() == []
    assert sys.getswitchinterval() == interval  # the GIL's hand-over is as it was


def test_rollback_while_writes_are_pending_undoes_them(lite: Database) -> None:
    with lite.uow() as uow:
        uow.ledger.append(_sessions(3000))
        uow.rollback()
        assert uow.records.session("s00001") is None
        uow.ledger.append(_sessions(1200))
        uow.commit()
    assert _counts(lite) == [1201, 1, 1200, 0, 0]
    assert _writers() == []


def test_an_import_whose_later_chunk_the_database_refuses_leaves_nothing(
    lite: Database,
) -> None:
    buffer = io.BytesIO()
    write_jsonl(generate(GeneratorConfig(sessions=12_000, seed=5)), buffer)
    buffer.seek(0)
    with lite.engine.begin() as conn:  # refuse one session of the third chunk
        conn.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON sessions WHEN NEW.pk = 11000 "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    with pytest.raises(EvolveError, match="refused"), lite.uow() as uow:
        import_records(uow, buffer)
    assert _counts(lite) == [0, 0, 0, 0, 0]
    assert _writers() == []


def test_the_inlined_chain_hashes_as_the_domain_does() -> None:
    events = [practice(), session("s1", at(0)), session("s2", at(5))]
    key = run_keys().chain_key
    rows, head = chain(events, Head(), 7, key)
    prev = GENESIS
    for seq, (e, row) in enumerate(zip(events, rows, strict=True), 1):
        data = canonical_data(e.data)
        digest = entry_hash(
            key, prev, canonical_entry(seq, e.kind, e.practice, e.subject, e.at, e.actor, data, 7)
        )
        assert row == (seq, 7, e.kind, e.practice, e.subject, e.at, e.actor, data.decode(),
                       prev, digest)  # fmt: skip
        prev = digest
    assert (head.seq, head.hash) == (3, prev)
