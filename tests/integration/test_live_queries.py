"""The reads behind the live screens: a room's session, the room's last ended session, a
therapist's day and the exits waiting for a signature. SQL on both engines and the in-memory
store must answer alike."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from stepout.adapters.db import Database
from stepout.adapters.memory import MemoryUnitOfWork
from stepout.domain.events import Event
from stepout.services.ports import Records
from tests.integration.builders import MINUTE, at, concern, exit_, iso, practice, session
from tests.keys import run_keys

EVENTS: list[Event] = [
    practice(),
    practice("p2"),
    session("s-1", at(0), 50, room="r1"),  # ended at 50
    session("s-2", at(60), 40, room="r1", therapist="t-002"),  # ended at 100
    session("s-3", at(110), None, room="r2"),  # in progress
    session("s-4", at(120), None, room="r1", therapist="t-002"),  # in progress
    session("s-5", at(130), None, room="r1", practice="p2"),  # another practice
    exit_("x-1", "s-1", at(10), at(15)),  # returned, not signed
    exit_("x-2", "s-1", at(20), at(22), signed_at="2026-03-02T15:00:00+00:00"),
    exit_("x-3", "s-3", at(115)),  # open
    concern("k-1", "s-1", at(55)),
    concern("k-2", "s-3", at(112)),
    concern("k-3", "s-5", at(131), practice="p2"),
    Event("concern.acknowledged", "p1", "k-1", at(70), {"acknowledged_at": iso(at(70))}),
]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def records(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Records]:
    if request.param == "memory":
        with MemoryUnitOfWork() as uow:
            uow.ledger.append(EVENTS)
            yield uow.records
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'stepout.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database.open(url, migrate=False, keys=run_keys())
    db.migrate()
    try:
        with db.uow() as uow:
            uow.ledger.append(EVENTS)
            uow.commit()
        with db.uow(read_only=True) as uow:
            yield uow.records
    finally:
        db.dispose()


def _id(record: object) -> str | None:
    return None if record is None else record.id  # type: ignore[attr-defined]


def test_a_room_shows_its_latest_session_in_progress_of_its_own_practice(
    records: Records,
) -> None:
    assert _id(records.session_in_room("p1", "r1")) == "s-4"
    assert _id(records.session_in_room("p1", "r2")) == "s-3"
    assert _id(records.session_in_room("p2", "r1")) == "s-5"
    assert records.session_in_room("p1", "r9") is None


def test_the_last_ended_session_of_a_room_is_found_only_since_the_bound(
    records: Records,
) -> None:
    assert _id(records.last_ended_in_room("p1", "r1", at(90))) == "s-2"
    assert _id(records.last_ended_in_room("p1", "r1", at(100))) == "s-2"
    assert records.last_ended_in_room("p1", "r1", at(100) + 1) is None
    assert records.last_ended_in_room("p1", "r2", at(0)) is None  # s-3 has not ended
    assert records.last_ended_in_room("p2", "r1", at(0)) is None


def test_a_therapists_day_is_their_sessions_started_in_the_window(records: Records) -> None:
    day = records.sessions_of_therapist("p1", "t-001", at(0), at(0) + 24 * 60 * MINUTE)
    assert [s.id for s in day] == ["s-1", "s-3"]
    assert [s.id for s in records.sessions_of_therapist("p1", "t-001", at(1), at(111))] == ["s-3"]
    assert [s.id for s in records.sessions_of_therapist("p2", "t-001", at(0), at(200))] == ["s-5"]
    assert records.sessions_of_therapist("p2", "t-002", at(0), at(200)) == []


def test_exits_to_sign_are_the_returned_unsigned_ones_of_the_therapist(
    records: Records,
) -> None:
    assert [x.id for x in records.exits_to_sign("p1", "t-001")] == ["x-1"]
    assert records.exits_to_sign("p1", "t-002") == []
    assert records.exits_to_sign("p2", "t-001") == []


def test_open_concerns_are_the_practices_unacknowledged_ones(records: Records) -> None:
    assert [c.id for c in records.open_concerns("p1", 10)] == ["k-2"]
    assert [c.id for c in records.open_concerns("p2", 10)] == ["k-3"]
    assert records.open_concerns("p2", 0) == []


def test_a_practices_day_is_every_session_started_in_the_window(records: Records) -> None:
    day = records.sessions_of_practice("p1", at(0), at(0) + 24 * 60 * MINUTE)
    assert [s.id for s in day] == ["s-1", "s-2", "s-3", "s-4"]
    assert [s.id for s in records.sessions_of_practice("p1", at(60), at(120))] == ["s-2", "s-3"]
    assert [s.id for s in records.sessions_of_practice("p2", at(0), at(200))] == ["s-5"]
