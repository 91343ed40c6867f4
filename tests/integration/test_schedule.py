"""Schedules on both engines: an import stores its appointments or nothing, re-importing is a
no-op, a reschedule and a cancellation update the `appointments` projection, a rebuild
reproduces it, the query-table check counts it, and a session starts from an appointment
through the workflow. Every id here is synthetic."""

from typing import Any

import pytest
from sqlalchemy import text

from stepout.adapters.db import Database
from stepout.adapters.schedule.csvfile import read_csv
from stepout.adapters.schedule.ics import read_ics
from stepout.cli.schedule import AccountsDirectory
from stepout.domain.commands import StartSession
from stepout.domain.instants import MICROS_PER_MINUTE, parse_instant
from stepout.domain.protocol import ProtocolError
from stepout.domain.schedule import Raw
from stepout.services.accounts import AccountService
from stepout.services.schedule import ScheduleRejected, ScheduleReport, import_schedule
from stepout.services.workflow import Workflow

T0 = parse_instant("2026-12-07T08:00:00+00:00")
HEADER = "id,therapist,client,room,modality,start,end,billed_codes,status"


def row(n: int, hour: int = 9, status: str = "", therapist: str = "t-1") -> str:
    return (
        f"a-{n},{therapist},c-{n:04d},room-1,in_person,2026-12-07T{hour:02d}:00:00-05:00,"
        f"2026-12-07T{hour:02d}:50:00-05:00,90834,{status}"
    )


def csv_of(*rows: str) -> list[Raw]:
    return list(read_csv(("\n".join((HEADER, *rows)) + "\n").encode(), "p1"))


@pytest.fixture
def practice(db: Database) -> Database:
    accounts = AccountService(db.uow, lambda: T0)
    accounts.add_practice("p1", "Synthetic practice", timezone="America/New_York")
    accounts.add_user("t-1", "p1", "therapist", None)
    accounts.add_room("room-1", "p1", "Room one")
    return db


def run(db: Database, entries: list[Raw]) -> ScheduleReport:
    with db.uow() as uow:
        return import_schedule(
            uow, entries, practice="p1", directory=AccountsDirectory(uow.accounts), clock=lambda: T0
        )


def rows_of(db: Database) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        found = conn.execute(
            text("SELECT id, therapist, start_us, status FROM appointments ORDER BY id")
        )
        return [tuple(r) for r in found]


def ledger_size(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def test_a_schedule_is_stored_and_reimporting_it_changes_nothing(practice: Database) -> None:
    db = practice
    report = run(db, csv_of(row(1), row(2, 10)))
    assert report.effects["schedule"] == 2
    nine = parse_instant("2026-12-07T14:00:00+00:00")
    assert rows_of(db) == [
        ("a-1", "t-1", nine, "scheduled"),
        ("a-2", "t-1", nine + 60 * MICROS_PER_MINUTE, "scheduled"),
    ]
    size = ledger_size(db)
    assert run(db, csv_of(row(1), row(2, 10))).effects["unchanged"] == 2
    assert ledger_size(db) == size


def test_one_bad_row_stores_nothing(practice: Database) -> None:
    db = practice
    run(db, csv_of(row(1)))
    size, before = ledger_size(db), rows_of(db)
    bad = csv_of(row(1, 11), row(2), row(3, therapist="t-9"))
    with pytest.raises(ScheduleRejected) as caught:
        run(db, bad)
    assert [str(e) for e in caught.value.errors] == ["line 4: therapist: is not a therapist here"]
    assert ledger_size(db) == size
    assert rows_of(db) == before  # a-1 not rescheduled, a-2 not scheduled


def test_reschedule_cancel_rebuild_and_verify(practice: Database) -> None:
    db = practice
    run(db, csv_of(row(1), row(2, 10)))
    run(db, csv_of(row(1, 12), row(2, 10, "cancelled")))
    noon = parse_instant("2026-12-07T17:00:00+00:00")
    ten = parse_instant("2026-12-07T15:00:00+00:00")
    expected = [("a-1", "t-1", noon, "scheduled"), ("a-2", "t-1", ten, "cancelled")]
    assert rows_of(db) == expected
    with db.engine.connect() as conn:
        full = [tuple(r) for r in conn.execute(text("SELECT * FROM appointments ORDER BY id"))]
    counts = db.projection_counts()
    assert counts["appointments"] == (2, 2)
    db.rebuild_projections()
    with db.engine.connect() as conn:
        again = [tuple(r) for r in conn.execute(text("SELECT * FROM appointments ORDER BY id"))]
    assert again == full
    assert db.verify_ledger().ok


def test_a_large_schedule_is_stored_in_bulk(practice: Database) -> None:
    """More events than one append chunk: the bulk path (the writer thread on SQLite)."""
    db = practice
    rows = [
        f"b-{i},t-1,c-{i:05d},room-1,telehealth,2026-12-{1 + i // 600:02d}T"
        f"{8 + i % 600 // 60:02d}:{i % 60:02d}:00Z,2026-12-{1 + i // 600:02d}T"
        f"{9 + i % 600 // 60:02d}:{i % 60:02d}:00Z,,"
        for i in range(6_000)
    ]
    assert run(db, csv_of(*rows)).effects["schedule"] == 6_000
    assert db.projection_counts()["appointments"] == (6_000, 6_000)
    assert run(db, csv_of(*rows)).effects["unchanged"] == 6_000
    # The first chunk of a file is appended before the last row is read: a bad last row still
    # leaves nothing behind.
    size = ledger_size(db)
    others = [r.replace("b-", "n-", 1) for r in rows]
    others[-1] = others[-1].replace("telehealth", "by post")
    with pytest.raises(ScheduleRejected) as caught:
        run(db, csv_of(*others))
    assert [str(e) for e in caught.value.errors] == [
        "line 6001: modality: must be one of in_person, telehealth"
    ]
    assert ledger_size(db) == size
    assert db.projection_counts()["appointments"] == (6_000, 6_000)


def test_an_ics_schedule_on_storage(practice: Database) -> None:
    db = practice
    ics = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Synthetic//EN\r\nBEGIN:VEVENT\r\n"
        b"UID:cal-1\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261207T090000\r\n"
        b"DTEND:20261207T095000\r\nX-STEPOUT-THERAPIST:t-1\r\nX-STEPOUT-CLIENT:c-0001\r\n"
        b"X-STEPOUT-ROOM:room-1\r\nX-STEPOUT-MODALITY:telehealth\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )
    run(db, list(read_ics(ics, "p1", "America/New_York")))
    assert rows_of(db) == [("cal-1", "t-1", parse_instant("2026-12-07T14:00:00Z"), "scheduled")]


def test_a_session_starts_from_an_appointment_and_then_it_cannot_move(
    practice: Database,
) -> None:
    db = practice
    run(db, csv_of(row(1)))
    start = parse_instant("2026-12-07T14:02:00Z")
    flow = Workflow(db.uow, clock=lambda: start)
    s = flow.start_session(StartSession(practice="p1", therapist="t-1", appointment="a-1"))
    assert (s.id, s.client, s.room, s.billed_codes, s.start) == (
        "a-1", "c-0001", "room-1", ("90834",), start
    )  # fmt: skip
    with db.uow(read_only=True) as uow:
        day = parse_instant("2026-12-07T05:00:00Z")
        listed = uow.records.appointments_of_therapist(
            "p1", "t-1", day, day + 24 * 60 * MICROS_PER_MINUTE
        )
    assert [(a.id, started) for a, started in listed] == [("a-1", True)]
    with pytest.raises(ProtocolError) as again:
        flow.start_session(StartSession(practice="p1", therapist="t-1", appointment="a-1"))
    assert again.value.code == "appointment-already-started"
    with pytest.raises(ScheduleRejected) as moved:
        run(db, csv_of(row(1, 11)))
    assert [str(e) for e in moved.value.errors] == [
        "line 2: id: has started; a started appointment cannot be rescheduled"
    ]
