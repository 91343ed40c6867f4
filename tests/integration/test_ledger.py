"""The ledger: all or nothing per unit of work, a chain that verifies, tampering found."""

import pytest
from sqlalchemy import text

from stepout.adapters.db import Database
from stepout.adapters.db.ledger import ReadOnlyError
from stepout.domain.chain import GENESIS
from stepout.domain.events import EvolveError
from tests.integration.builders import MINUTE, T0, at, concern, count, exit_, practice, session
from tests.tampering import lift_append_only


def _ten(db: Database) -> None:
    """Ten entries: a practice, three sessions, three exits, three concerns."""
    events = [practice()]
    for i in range(3):
        events += [
            session(f"s{i}", at(60 * i)),
            exit_(f"e{i}", f"s{i}", at(60 * i + 10), at(60 * i + 15)),
            concern(f"k{i}", f"s{i}", at(60 * i + 55)),
        ]
    with db.uow() as uow:
        uow.ledger.append(events)
        uow.commit()


def test_committed_appends_are_stored_with_their_projections(db: Database) -> None:
    _ten(db)
    with db.engine.connect() as conn:
        assert count(conn, "events") == 10
        assert [count(conn, t) for t in ("practices", "sessions", "exits", "concerns")] == [
            1, 3, 3, 3,
        ]  # fmt: skip
    with db.uow(read_only=True) as uow:
        assert uow.records.session("s1") is not None
        assert uow.records.exit("e2") is not None


def test_a_unit_of_work_left_without_commit_leaves_no_trace(db: Database) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice(), session("s1")])
        assert uow.records.session("s1") is not None  # visible inside its own transaction
    with db.engine.connect() as conn:
        assert count(conn, "events") == 0
        assert count(conn, "sessions") == 0
        assert count(conn, "practices") == 0


def test_an_exception_in_the_unit_of_work_rolls_everything_back(db: Database) -> None:
    def fail_midway() -> None:
        with db.uow() as uow:
            uow.ledger.append([practice(), session("s1")])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    with db.engine.connect() as conn:
        assert count(conn, "events") == count(conn, "sessions") == 0


def test_an_event_that_does_not_apply_leaves_the_unit_of_work_usable(db: Database) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice(), session("s1")])
        with pytest.raises(EvolveError, match="s1 already exists"):
            uow.ledger.append([session("s2"), session("s1")])
        with pytest.raises(EvolveError, match="session s9 does not exist"):
            uow.ledger.append([exit_("e1", "s9", at(5))])
        with pytest.raises(EvolveError, match="does not exist"):
            uow.ledger.append([exit_("e1", "s1", at(5)), _returned("e404")])
        uow.ledger.append([exit_("e1", "s1", at(5))])
        uow.commit()
    with db.engine.connect() as conn:
        assert count(conn, "events") == 3
        assert count(conn, "sessions") == 1
    assert db.verify_ledger().ok


def test_a_record_stored_earlier_cannot_be_created_again(db: Database) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice(), session("s1"), exit_("e1", "s1", at(5))])
        uow.commit()
    with db.uow() as uow:
        with pytest.raises(EvolveError, match="e1 already exists"):
            uow.ledger.append([exit_("e1", "s1", at(7))])
        with pytest.raises(EvolveError, match="practice p2 does not exist"):
            uow.ledger.append([session("s2", practice="p2")])


def test_a_read_only_unit_of_work_cannot_append(db: Database) -> None:
    with db.uow(read_only=True) as uow, pytest.raises(ReadOnlyError):
        uow.ledger.append([practice()])


def test_appends_continue_the_chain_across_units_of_work(db: Database) -> None:
    _ten(db)
    with db.uow() as uow:
        uow.ledger.append([session("s9", at(500))])
        uow.commit()
        uow.ledger.append([exit_("e9", "s9", at(510))])  # a new transaction, same uow
        uow.commit()
    result = db.verify_ledger()
    assert result.ok
    assert result.checked == 12
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, prev_hash, hash FROM events ORDER BY seq")).all()
    assert [r[0] for r in rows] == list(range(1, 13))
    assert rows[0][1] == GENESIS
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, 12))


def test_an_empty_ledger_verifies(db: Database) -> None:
    result = db.verify_ledger()
    assert (result.ok, result.checked, result.head) == (True, 0, GENESIS)


def _returned(xid: str) -> "object":
    from stepout.domain.events import Event

    return Event("exit.returned", "p1", xid, T0 + MINUTE, {"returned_at": None})


def _tamper(db: Database, *statements: str) -> None:
    """Change the ledger behind the application's back, as someone with database access
    could: first lift the append-only guard."""
    with db.engine.begin() as conn:
        lift_append_only(conn, "events")
        for statement in statements:
            conn.execute(text(statement))


def test_changed_data_is_found_at_its_entry(db: Database) -> None:
    _ten(db)
    # (the explanation is encrypted: change a plain field)
    _tamper(db, "UPDATE events SET data = replace(data, 'technical', 'other') WHERE seq = 6")
    result = db.verify_ledger()
    assert (result.ok, result.first_broken, result.checked) == (False, 6, 5)
    assert "content" in (result.reason or "")


def test_a_changed_instant_is_found_at_its_entry(db: Database) -> None:
    _ten(db)
    _tamper(db, "UPDATE events SET at_us = at_us + 1 WHERE seq = 3")
    assert db.verify_ledger().first_broken == 3


def test_a_deleted_entry_is_found_where_it_is_missing(db: Database) -> None:
    _ten(db)
    _tamper(db, "DELETE FROM events WHERE seq = 4")
    result = db.verify_ledger()
    assert (result.first_broken, result.checked) == (4, 3)
    assert "missing" in (result.reason or "")


def test_swapped_entries_are_found_at_the_first_of_them(db: Database) -> None:
    _ten(db)
    swap = (
        "UPDATE events SET seq = CASE seq WHEN 3 THEN -7 WHEN 7 THEN -3 END WHERE seq IN (3, 7)",
        "UPDATE events SET seq = -seq WHERE seq < 0",
    )
    _tamper(db, *swap)
    result = db.verify_ledger()
    assert result.first_broken == 3


def test_a_rewritten_chain_is_found_where_the_rewrite_stops(db: Database) -> None:
    """Rehashing one entry consistently still breaks the link to the next."""
    from stepout.domain.chain import LedgerEntry, entry_hash

    _ten(db)
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM events WHERE seq = 5")).one()
    forged = LedgerEntry._make(row)._replace(data='{"forged": 1}')
    digest = entry_hash(db.keys.chain_key, forged.prev_hash, forged.canonical())
    _tamper(db, f"UPDATE events SET data = '{forged.data}', hash = '{digest}' WHERE seq = 5")
    result = db.verify_ledger()
    assert (result.first_broken, result.checked) == (6, 5)
    assert "prev_hash" in (result.reason or "")
