"""The import shortcut writes the same rows as folding `evolve`; engines are set up as
promised (WAL, synchronous=FULL, foreign keys, BEGIN IMMEDIATE for writers)."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from stepout.adapters.db import Database, fastrows
from stepout.domain.events import Event, evolve
from stepout.domain.instants import InstantError, format_instant, parse_instant
from stepout.domain.records import Concern, Exit, Session
from tests.keys import run_keys

REF = (7, "p1", "t-001")
CODES = ["90834", "90837", "90840", "90785"]
SAFEGUARDS = ["records_secured", "screen_locked", "door_closed"]
instants = st.integers(min_value=0, max_value=4_000_000_000_000_000).map(format_instant)
names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
)
maybe = st.none() | names


def _optional(required: dict[str, Any], optional: dict[str, Any]) -> Any:
    return st.fixed_dictionaries(required, optional=optional)


sessions = _optional(
    {
        "practice": names, "therapist": names, "client": names, "room": names,
        "modality": st.sampled_from(["in_person", "telehealth"]), "start": instants,
    },
    {"end": st.none() | instants, "billed_codes": st.lists(st.sampled_from(CODES))},
)  # fmt: skip
exits = _optional(
    {"session": names, "source": st.sampled_from(["declared", "sensor"]), "left_at": instants},
    {
        "reason": st.none() | st.sampled_from(["technical", "other"]), "reason_note": maybe,
        "returned_at": st.none() | instants,
        "client_informed": st.sampled_from(["before_leaving", "after_return", "not_informed"]),
        "explanation": maybe,
        "safeguards": st.lists(st.sampled_from(SAFEGUARDS)),
        "client_attended_by": maybe, "ems": st.none() | st.sampled_from(["called", "not_needed"]),
        "checked_in": st.booleans(), "signed_at": st.none() | instants,
        "expected_minutes": st.none() | st.integers(0, 600),
    },
)  # fmt: skip
concerns = _optional(
    {"session": names, "raised_at": instants, "text": names},
    {"acknowledged_at": st.none() | instants},
)


def _shortcut(kind: str, subject: str, data: dict[str, Any]) -> tuple[Any, ...]:
    if kind == "session.recorded":
        return fastrows.session_from_data(1, subject, data)
    if kind == "exit.recorded":
        return fastrows.exit_from_data(1, subject, data, REF)
    return fastrows.concern_from_data(1, subject, data, REF)


def _folded(kind: str, subject: str, data: dict[str, Any]) -> tuple[Any, ...]:
    record = evolve(None, Event(kind, "p1", subject, 0, data))
    if isinstance(record, Session):
        return fastrows.session_row(1, record)
    if isinstance(record, Exit):
        return fastrows.exit_row(1, record, REF)
    assert isinstance(record, Concern)
    return fastrows.concern_row(1, record, REF)


@given(names, sessions)
def test_a_recorded_session_makes_the_same_row_either_way(subject: str, data: Any) -> None:
    assert _shortcut("session.recorded", subject, data) == _folded(
        "session.recorded", subject, data
    )


@given(names, exits)
def test_a_recorded_exit_makes_the_same_row_either_way(subject: str, data: Any) -> None:
    assert _shortcut("exit.recorded", subject, data) == _folded("exit.recorded", subject, data)


@given(names, concerns)
def test_a_recorded_concern_makes_the_same_row_either_way(subject: str, data: Any) -> None:
    assert _shortcut("concern.recorded", subject, data) == _folded(
        "concern.recorded", subject, data
    )


def test_sqlite_runs_in_wal_with_full_sync_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 's.db'}", keys=run_keys())
    try:
        with db.engine.connect() as conn:
            pragma = {
                name: conn.execute(text(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        db.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 30_000,
    }


def test_a_writing_unit_of_work_holds_the_sqlite_write_lock_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = Database.open(f"sqlite:///{path}", keys=run_keys())
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with db.uow(read_only=True):
            other.execute("BEGIN IMMEDIATE")  # readers leave the write lock free
            other.execute("ROLLBACK")
        with db.uow():
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            assert other.execute("SELECT count(*) FROM events").fetchone() == (0,)
    finally:
        other.close()
        db.dispose()


def test_an_in_memory_sqlite_database_works_for_quick_uses() -> None:
    db = Database.open("sqlite://", keys=run_keys())
    try:
        with db.uow() as uow:
            uow.ledger.append(
                [Event("practice.created", "p1", "p1", 0, {"name": "P", "timezone": "UTC"})]
            )
            uow.commit()
        with db.uow(read_only=True) as uow:
            assert uow.records.practice("p1") is not None
        assert db.verify_ledger().checked == 1
    finally:
        db.dispose()


@given(
    st.datetimes(timezones=st.timezones(), allow_imaginary=False).map(lambda d: d.isoformat())
    | st.datetimes().map(lambda d: d.isoformat())
    | st.text(max_size=30)
)
def test_the_inlined_instant_parser_agrees_with_the_domain_one(text: str) -> None:
    try:
        expected: int | str = parse_instant(text)
    except InstantError as e:
        expected = str(e)
    try:
        got: int | str = fastrows.instant(text)
    except InstantError as e:
        got = str(e)
    assert got == expected
