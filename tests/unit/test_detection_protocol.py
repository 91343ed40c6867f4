"""Sensor-detected exits in the protocol, on the in-memory store: recorded with source
`sensor`, no reason and actor `sensor`; merged with the therapist's declaration in either order
(one absence, one exit); whichever of the sensor's return and the "back" tap comes first ends
it. Every id and text is synthetic."""

import pytest

from stepout.adapters.memory import MemoryState, MemoryUnitOfWork
from stepout.domain.commands import (
    ClassifyExit,
    DeclareExit,
    DetectExit,
    EndSession,
    Return,
    SensorReturn,
    StartSession,
)
from stepout.domain.events import Event
from stepout.domain.instants import MICROS_PER_MINUTE, parse_instant
from stepout.domain.protocol import MERGE_NOTE, ProtocolError
from stepout.domain.records import Exit, Session
from stepout.services.workflow import Workflow

M = MICROS_PER_MINUTE
T0 = parse_instant("2024-03-04T09:00:00+00:00")
WORDS = "Stepping out to fetch water for you."


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += int(minutes * M)


@pytest.fixture
def state() -> MemoryState:
    state = MemoryState()
    with MemoryUnitOfWork(state) as uow:
        uow.ledger.append([Event("practice.created", "p1", "p1", T0, {"name": "P"})])
        uow.commit()
    return state


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def flow(state: MemoryState, clock: Clock) -> Workflow:
    return Workflow(lambda: MemoryUnitOfWork(state), clock)


def start(flow: Workflow) -> Session:
    return flow.start_session(
        StartSession(
            practice="p1",
            actor="t-1",
            therapist="t-1",
            client="client-0042",
            room="r1",
            modality="in_person",
        )
    )


def exits(state: MemoryState) -> list[Exit]:
    return [r for r in state.records.values() if isinstance(r, Exit)]


def detect(flow: Workflow, s: Session, left_at: int) -> Exit:
    record = flow.run(DetectExit(practice="p1", session=s.id, left_at=left_at)).record
    assert isinstance(record, Exit)
    return record


def test_a_sensor_exit_is_recorded_with_source_sensor_no_reason_and_actor_sensor(
    flow: Workflow, state: MemoryState, clock: Clock
) -> None:
    s = start(flow)
    clock.advance(10)
    left = clock.now - 1 * M
    x = detect(flow, s, left)
    assert (x.source, x.reason, x.left_at, x.returned_at) == ("sensor", None, left, None)
    event = state.events[-1]
    assert (event.kind, event.actor, event.data["source"]) == ("exit.declared", "sensor", "sensor")
    clock.advance(5)
    outcome = flow.run(SensorReturn(practice="p1", session=s.id, returned_at=clock.now - M))
    assert outcome.changed
    assert isinstance(outcome.record, Exit)
    assert outcome.record.returned_at == clock.now - M


def test_the_sensors_time_must_lie_in_the_session(flow: Workflow, clock: Clock) -> None:
    s = start(flow)
    clock.advance(10)
    for left_at in (T0 - 1, clock.now + 1):
        with pytest.raises(ProtocolError) as caught:
            detect(flow, s, left_at)
        assert caught.value.code == "invalid-value"


def test_declared_first_the_sensor_adds_nothing(
    flow: Workflow, state: MemoryState, clock: Clock
) -> None:
    s = start(flow)
    clock.advance(10)
    declared = flow.declare_exit(DeclareExit(practice="p1", actor="t-1", session=s.id))
    clock.advance(2)
    events = len(state.events)
    outcome = flow.run(DetectExit(practice="p1", session=s.id, left_at=clock.now - M))
    assert not outcome.changed
    assert outcome.record == declared
    assert len(state.events) == events
    # The sensor never ends a declared exit: the therapist does.
    back = flow.run(SensorReturn(practice="p1", session=s.id, returned_at=clock.now))
    assert not back.changed
    assert [x.returned_at for x in exits(state)] == [None]


def test_an_absence_that_began_before_a_declared_exit_ended_is_that_exit(
    flow: Workflow, state: MemoryState, clock: Clock
) -> None:
    s = start(flow)
    clock.advance(10)
    left = clock.now
    declared = flow.declare_exit(DeclareExit(practice="p1", actor="t-1", session=s.id))
    clock.advance(3)
    flow.return_(Return(practice="p1", actor="t-1", exit=declared.id))
    clock.advance(0.5)
    outcome = flow.run(DetectExit(practice="p1", session=s.id, left_at=left + 30_000_000))
    assert not outcome.changed
    assert len(exits(state)) == 1
    # A later absence is a new exit.
    clock.advance(10)
    assert detect(flow, s, clock.now - M).id != declared.id
    assert len(exits(state)) == 2


def test_the_sensor_first_then_the_tap_declares_that_exit(
    flow: Workflow, state: MemoryState, clock: Clock
) -> None:
    s = start(flow)
    clock.advance(10)
    left = clock.now - M
    sensed = detect(flow, s, left)
    clock.advance(0.5)
    tapped = flow.declare_exit(
        DeclareExit(
            practice="p1",
            actor="t-1",
            session=s.id,
            reason="health_emergency",
            reason_note="Client felt faint.",
            client_informed="before_leaving",
            explanation=WORDS,
            safeguards=("records_secured", "door_closed"),
            client_attended_by="Reception colleague",
            ems="not_needed",
        )
    )
    assert tapped.id == sensed.id
    assert len(exits(state)) == 1
    assert (tapped.source, tapped.left_at, tapped.reason) == ("sensor", left, "health_emergency")
    assert (tapped.client_informed, tapped.explanation) == ("before_leaving", WORDS)
    assert tapped.safeguards == {"records_secured", "door_closed"}
    assert (tapped.client_attended_by, tapped.ems) == ("Reception colleague", "not_needed")
    kinds = [e.kind for e in state.events if e.subject == sensed.id]
    assert kinds == [
        "exit.declared",
        "exit.amended",
        "exit.client_informed",
        "exit.safeguard_confirmed",
        "exit.safeguard_confirmed",
        "exit.attendant_arranged",
        "exit.ems_decided",
    ]
    amended = next(e for e in state.events if e.kind == "exit.amended")
    assert amended.data["note"] == MERGE_NOTE
    # Classifying it again with the same reason changes nothing; another reason is refused.
    assert not flow.run(
        ClassifyExit(
            practice="p1",
            actor="t-1",
            exit=sensed.id,
            reason="health_emergency",
            reason_note="Client felt faint.",
        )
    ).changed
    with pytest.raises(ProtocolError) as caught:
        flow.declare_exit(DeclareExit(practice="p1", actor="t-1", session=s.id, reason="technical"))
    assert caught.value.code == "therapist-already-out"


def test_a_tap_without_a_reason_leaves_the_sensor_exit_to_classify(
    flow: Workflow, state: MemoryState, clock: Clock
) -> None:
    s = start(flow)
    clock.advance(10)
    sensed = detect(flow, s, clock.now)
    tapped = flow.declare_exit(DeclareExit(practice="p1", actor="t-1", session=s.id))
    assert tapped == sensed  # nothing said at the tap: nothing to add
    assert [e.kind for e in state.events if e.subject == sensed.id] == ["exit.declared"]


def test_the_sensors_return_first_then_the_back_tap_is_a_no_op_but_its_check_in(
    flow: Workflow, state: MemoryState, clock: Clock
) -> None:
    s = start(flow)
    clock.advance(10)
    sensed = detect(flow, s, clock.now - M)
    clock.advance(4)
    sensor_back = clock.now - M // 2
    flow.run(SensorReturn(practice="p1", session=s.id, returned_at=sensor_back))
    clock.advance(0.2)
    tapped = flow.return_(Return(practice="p1", actor="t-1", exit=sensed.id, checked_in=True))
    assert (tapped.returned_at, tapped.checked_in) == (sensor_back, True)
    assert not flow.run(Return(practice="p1", actor="t-1", exit=sensed.id)).changed


def test_the_back_tap_first_then_the_sensors_return_is_a_no_op(
    flow: Workflow, state: MemoryState, clock: Clock
) -> None:
    s = start(flow)
    clock.advance(10)
    sensed = detect(flow, s, clock.now - M)
    clock.advance(4)
    tapped = flow.return_(Return(practice="p1", actor="t-1", exit=sensed.id))
    clock.advance(0.2)
    events = len(state.events)
    outcome = flow.run(SensorReturn(practice="p1", session=s.id, returned_at=clock.now))
    assert not outcome.changed
    assert len(state.events) == events
    assert exits(state)[0].returned_at == tapped.returned_at


def test_a_declared_exit_is_still_returned_once(flow: Workflow, clock: Clock) -> None:
    s = start(flow)
    clock.advance(10)
    x = flow.declare_exit(DeclareExit(practice="p1", actor="t-1", session=s.id))
    flow.return_(Return(practice="p1", actor="t-1", exit=x.id))
    with pytest.raises(ProtocolError) as caught:
        flow.return_(Return(practice="p1", actor="t-1", exit=x.id))
    assert caught.value.code == "exit-not-open"


def test_no_sensor_exit_once_the_session_has_ended(flow: Workflow, clock: Clock) -> None:
    s = start(flow)
    clock.advance(50)
    flow.end_session(EndSession(practice="p1", actor="t-1", session=s.id))
    with pytest.raises(ProtocolError) as caught:
        detect(flow, s, clock.now - 10 * M)
    assert caught.value.code == "session-not-in-progress"
    assert not flow.run(SensorReturn(practice="p1", session=s.id, returned_at=clock.now)).changed


def test_another_practices_session_is_not_found(flow: Workflow, clock: Clock) -> None:
    s = start(flow)
    clock.advance(10)
    with pytest.raises(ProtocolError) as caught:
        flow.run(DetectExit(practice="p2", session=s.id, left_at=clock.now))
    assert caught.value.code == "not-found"
