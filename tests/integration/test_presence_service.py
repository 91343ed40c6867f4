"""The presence service on real storage, on both engines: observations in memory, exits in the
ledger (source `sensor`, actor `sensor`), merged with declarations, never from silence while a
sensor is offline, and a session started after the service is watched within seconds. Every id
is synthetic."""

from functools import partial

import pytest
from sqlalchemy import select

from stepout.adapters.db import Database, tenancy
from stepout.adapters.db.tables import AuditRow
from stepout.domain.commands import DeclareExit, EndSession, Return, StartSession
from stepout.domain.detection import Thresholds
from stepout.domain.events import Event
from stepout.domain.instants import MICROS_PER_SECOND, parse_instant
from stepout.domain.presence import BadgeSeen, DoorChanged, SensorAvailability, SensorsConfig
from stepout.domain.records import Exit, Session
from stepout.services.presence import PresenceService
from stepout.services.workflow import Workflow

P = "p1"
S = MICROS_PER_SECOND
TIMEOUT = 30 * S


class Clock:
    def __init__(self) -> None:
        self.now = parse_instant("2026-11-03T09:00:00-05:00")

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * S)


class Harness:
    def __init__(self, db: Database, clock: Clock, refresh_every: int = 2 * S) -> None:
        self.db = db
        self.clock = clock
        with db.uow() as uow:
            uow.ledger.append([Event("practice.created", P, P, clock(), {"name": "Practice"})])
            uow.commit()
        self.flow = Workflow(partial(db.uow, scope=P), clock)
        self.changed: list[Session] = []
        config = SensorsConfig(P, away_timeout=TIMEOUT)
        self.service = PresenceService(
            config,
            partial(db.uow, scope=P),
            read_uow=partial(db.uow, read_only=True, scope=P),
            clock=clock,
            on_change=self.changed.append,
            thresholds=Thresholds.of(config, reorder_window=0),
            refresh_every=refresh_every,
        )

    def start(self, therapist: str = "t1", room: str = "r1") -> Session:
        return self.flow.start_session(
            StartSession(
                practice=P,
                actor=therapist,
                therapist=therapist,
                client="client-0001",
                room=room,
                modality="in_person",
            )
        )

    def seen(self, therapist: str = "t1", room: str = "r1", distance: float = 1.5) -> None:
        self.service.observe(BadgeSeen(therapist, room, distance, self.clock()))

    def wait(self, seconds: float, step: float = 1.0) -> None:
        """Let time pass, ticking as the consumer does."""
        end = self.clock() + int(seconds * S)
        while self.clock() < end:
            self.clock.advance(min(step, (end - self.clock()) / S))
            self.service.tick(self.clock())

    def exits(self) -> list[Exit]:
        with self.db.uow(read_only=True, scope=P) as uow:
            records = uow.records
            return [
                x for s in records.sessions_in_progress(P) for x in records.exits_of_session(s.id)
            ]


@pytest.fixture
def h(db: Database) -> Harness:
    return Harness(db, Clock())


def test_an_undeclared_exit_is_recorded_and_closed_when_the_badge_is_back(h: Harness) -> None:
    s = h.start()
    h.wait(1)
    h.seen()
    last_seen = h.clock()
    h.wait(TIMEOUT / S)
    assert h.exits() == []  # exactly the timeout: not yet
    h.wait(2)
    (x,) = h.exits()
    assert (x.source, x.reason, x.left_at, x.returned_at) == ("sensor", None, last_seen, None)
    assert [c.id for c in h.changed] == [s.id]
    h.wait(120)
    h.seen()
    back = h.clock()
    h.wait(1)
    (x,) = h.exits()
    assert x.returned_at == back
    assert [c.id for c in h.changed] == [s.id, s.id]
    stats = h.service.stats()
    assert (stats["exits_begun"], stats["exits_ended"], stats["sessions_watched"]) == (1, 1, 1)
    with tenancy.scope(tenancy.ALL), h.db.engine.connect() as conn:
        rows = conn.execute(
            select(AuditRow.actor, AuditRow.action, AuditRow.channel, AuditRow.target).where(
                AuditRow.actor == "sensor"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("sensor", "exit.detect", "sensor", x.id),
        ("sensor", "exit.sensor_return", "sensor", x.id),
    ]


def test_declared_first_the_sensor_adds_nothing(h: Harness) -> None:
    s = h.start()
    h.seen()
    h.wait(5)
    declared = h.flow.declare_exit(
        DeclareExit(practice=P, actor="t1", session=s.id, reason="technical")
    )
    h.wait(TIMEOUT / S + 5)
    h.seen()
    h.wait(2)
    assert h.exits() == [declared]  # still open: the therapist taps "back"
    assert h.service.stats()["merged"] == 2
    assert h.changed == []


def test_the_sensor_first_then_the_tap_is_one_exit(h: Harness) -> None:
    s = h.start()
    h.seen()
    left = h.clock()
    h.wait(TIMEOUT / S + 2)
    (sensed,) = h.exits()
    tapped = h.flow.declare_exit(
        DeclareExit(practice=P, actor="t1", session=s.id, reason="client_safety")
    )
    assert tapped.id == sensed.id
    h.flow.return_(Return(practice=P, actor="t1", exit=sensed.id, checked_in=True))
    h.seen()
    h.wait(2)
    (x,) = h.exits()
    assert (x.source, x.reason, x.left_at, x.checked_in) == ("sensor", "client_safety", left, True)
    assert x.returned_at is not None
    assert h.service.stats()["merged"] == 1  # the badge back after the tap changed nothing


def test_no_exit_while_the_rooms_receiver_is_offline(h: Harness) -> None:
    h.start()
    h.seen()
    h.service.observe(SensorAvailability("rx-r1", "r1", online=False, at=h.clock()))
    h.wait(600, step=5)
    assert h.exits() == []
    h.service.observe(SensorAvailability("rx-r1", "r1", online=True, at=h.clock()))
    online = h.clock()
    h.wait(TIMEOUT / S)
    assert h.exits() == []
    h.wait(2)
    assert [x.left_at for x in h.exits()] == [online]


def test_a_badge_in_another_room_is_an_exit_and_the_door_gives_the_time(h: Harness) -> None:
    h.start()
    h.seen()
    h.wait(2)
    h.service.observe(DoorChanged("door-r1", "r1", closed=False, at=h.clock()))
    opened = h.clock()
    h.wait(3)
    h.seen(room="r2")
    h.wait(12)  # the elsewhere wait (10 s), not the away timeout
    assert [x.left_at for x in h.exits()] == [opened]


def test_duplicates_and_disorder_make_one_exit(h: Harness) -> None:
    h.start()
    t = h.clock()
    for at in (t + 2 * S, t + 1 * S, t + 2 * S, t + 2 * S):
        h.service.observe(BadgeSeen("t1", "r1", 1.0, at))
    h.wait(TIMEOUT / S + 10)
    h.service.observe(BadgeSeen("t1", "r1", 1.0, t + 2 * S))  # a stale repeat
    h.wait(60)
    assert [(x.left_at, x.returned_at) for x in h.exits()] == [(t + 2 * S, None)]
    assert h.service.stats()["stale"] == 3


def test_a_session_started_after_the_service_is_watched_within_seconds(h: Harness) -> None:
    h.wait(10)  # the service is running, with nothing to watch
    s = h.start(therapist="t2", room="r2")
    h.wait(2)
    assert h.service.stats()["sessions_watched"] == 1
    h.wait(TIMEOUT / S + 1)
    assert [x.session for x in h.exits()] == [s.id]


def test_a_decision_for_a_session_that_ended_meanwhile_is_refused_and_counted(
    db: Database,
) -> None:
    h = Harness(db, Clock(), refresh_every=3600 * S)  # it will not learn of the end in time
    s = h.start()
    h.wait(1)
    h.flow.end_session(EndSession(practice=P, actor="t1", session=s.id))
    h.wait(TIMEOUT / S + 1)
    assert h.service.stats()["refused"] == 1
    with tenancy.scope(tenancy.ALL), h.db.engine.connect() as conn:
        rows = conn.execute(
            select(AuditRow.action, AuditRow.outcome, AuditRow.target).where(
                AuditRow.actor == "sensor"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("exit.detect", "failed", s.id)]
    h.service.sessions_changed()  # as the live notices would say
    h.wait(TIMEOUT / S + 1)
    assert (h.service.stats()["refused"], h.service.stats()["sessions_watched"]) == (1, 0)
