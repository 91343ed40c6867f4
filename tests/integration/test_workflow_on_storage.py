"""The live workflow on real storage, on both engines: a health emergency from the tap to the
signature, the refusals, and the ledger that records each step."""

import pytest

from stepout.adapters.db import Database
from stepout.domain.commands import (
    ArrangeAttendant,
    DecideEms,
    DeclareExit,
    EndSession,
    Return,
    SignExit,
    StartSession,
)
from stepout.domain.events import Event
from stepout.domain.instants import MICROS_PER_MINUTE, parse_instant
from stepout.domain.protocol import ProtocolError
from stepout.domain.records import Exit
from stepout.policy.model import load_policy
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit, run_billing
from stepout.services.workflow import Workflow

P = "p1"
ALL = ("records_secured", "screen_locked", "door_closed")


class Clock:
    def __init__(self) -> None:
        self.now = parse_instant("2026-11-03T09:00:00-05:00")

    def __call__(self) -> int:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += int(minutes * MICROS_PER_MINUTE)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def flow(db: Database, clock: Clock) -> Workflow:
    with db.uow() as uow:
        uow.ledger.append([Event("practice.created", P, P, clock(), {"name": "Practice one"})])
        uow.commit()
    return Workflow(db.uow, clock)


def start(flow: Workflow, therapist: str = "t1") -> str:
    return flow.start_session(
        StartSession(
            practice=P,
            therapist=therapist,
            client="client-0001",
            room="r1",
            modality="in_person",
            billed_codes=("90837",),
        )
    ).id


def test_a_health_emergency_from_tap_to_signature(
    db: Database, flow: Workflow, clock: Clock
) -> None:
    session = start(flow)
    clock.advance(20)
    x = flow.declare_exit(
        DeclareExit(
            practice=P,
            session=session,
            reason="health_emergency",
            client_informed="before_leaving",
            explanation="I am getting help for you right now.",
            safeguards=ALL,
        )
    )
    flow.decide_ems(DecideEms(practice=P, exit=x.id, ems="called"))
    flow.arrange_attendant(ArrangeAttendant(practice=P, exit=x.id, client_attended_by="reception"))
    clock.advance(12)
    flow.return_(Return(practice=P, exit=x.id, checked_in=True))
    clock.advance(33)
    flow.end_session(EndSession(practice=P, session=session))
    clock.advance(60)
    signed = flow.sign_exit(SignExit(practice=P, exit=x.id))

    assert isinstance(signed, Exit)
    assert (signed.ems, signed.client_attended_by, signed.checked_in) == (
        "called",
        "reception",
        True,
    )
    assert signed.returned_at is not None
    assert signed.returned_at - signed.left_at == 12 * MICROS_PER_MINUTE
    with db.uow(read_only=True) as uow:
        findings = run_audit(uow.records, Selection(), load_policy(), clock())
        (line,) = list(run_billing(uow.records, Selection()))
    # 65 minutes in the room, 12 of them out: 53 net still supports 90837.
    assert (line.gross_minutes, line.net_minutes, line.status) == (65, 53, "supported")
    assert findings == []
    assert db.verify_ledger().ok


def test_refusals_store_nothing(db: Database, flow: Workflow, clock: Clock) -> None:
    first, second = start(flow), start(flow)
    clock.advance(5)
    x = flow.declare_exit(DeclareExit(practice=P, session=first, reason="technical"))
    checked_before = db.verify_ledger().checked

    with pytest.raises(ProtocolError) as out:
        flow.declare_exit(DeclareExit(practice=P, session=second, reason="technical"))
    assert out.value.code == "therapist-already-out"
    clock.advance(1)
    flow.return_(Return(practice=P, exit=x.id))
    with pytest.raises(ProtocolError) as twice:
        flow.return_(Return(practice=P, exit=x.id))
    assert twice.value.code == "exit-not-open"
    with pytest.raises(ProtocolError) as elsewhere:
        flow.declare_exit(DeclareExit(practice="p2", session=first, reason="technical"))
    assert elsewhere.value.code == "not-found"

    assert db.verify_ledger().checked == checked_before + 1  # only the return
