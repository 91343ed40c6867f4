"""The workflow's handlers on the in-memory store: each command is one unit of work that
stores all its events or none, and random command sequences keep the protocol's invariants."""

from collections import Counter
from collections.abc import Sequence
from typing import Any, Self

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from stepout.adapters.memory import MemoryRecords, MemoryState, MemoryUnitOfWork
from stepout.domain.commands import (
    AcknowledgeConcern,
    Amend,
    ArrangeAttendant,
    CheckIn,
    ClassifyExit,
    Command,
    ConfirmSafeguard,
    DecideEms,
    DeclareExit,
    EndSession,
    InformClient,
    RaiseConcern,
    Return,
    SignExit,
    StartSession,
)
from stepout.domain.events import Event, EvolveError, evolve
from stepout.domain.instants import (
    MICROS_PER_MINUTE,
    MICROS_PER_SECOND,
    format_instant,
    parse_instant,
)
from stepout.domain.protocol import ProtocolError
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.vocabulary import REASONS, SAFEGUARDS
from stepout.services import ids
from stepout.services.workflow import Workflow

M = MICROS_PER_MINUTE
T0 = parse_instant("2024-03-04T09:00:00+00:00")
WORDS = "Stepping out to fix the video link."
ALL_SAFEGUARDS = ("records_secured", "screen_locked", "door_closed")


class Clock:
    def __init__(self, start: int = T0) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += int(minutes * M)


def new_state() -> MemoryState:
    state = MemoryState()
    with MemoryUnitOfWork(state) as uow:
        for practice in ("p1", "p2"):
            uow.ledger.append([Event("practice.created", practice, practice, T0, {"name": "P"})])
        uow.commit()
    return state


@pytest.fixture
def state() -> MemoryState:
    return new_state()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def flow(state: MemoryState, clock: Clock) -> Workflow:
    return Workflow(lambda: MemoryUnitOfWork(state), clock)


def start(flow: Workflow, therapist: str = "t-007", practice: str = "p1") -> Session:
    return flow.start_session(
        StartSession(
            practice=practice,
            actor=therapist,
            therapist=therapist,
            client="client-0042",
            room="r1",
            modality="in_person",
            billed_codes=("90837",),
        )
    )


def refused(flow: Workflow, state: MemoryState, command: Command) -> str:
    """The refusal's code, having checked that nothing was stored."""
    events, records = list(state.events), dict(state.records)
    with pytest.raises(ProtocolError) as caught:
        flow.handle(command)
    assert state.events == events
    assert state.records == records
    return caught.value.code


# --- happy paths ---------------------------------------------------------------------------


def test_a_technical_exit_from_tap_to_signature(flow: Workflow, clock: Clock) -> None:
    s = start(flow)
    clock.advance(20)
    left = clock.now
    x = flow.declare_exit(
        DeclareExit(
            practice="p1",
            actor="t-007",
            session=s.id,
            reason="technical",
            reason_note="Video link dropped.",
            client_informed="before_leaving",
            explanation=WORDS,
            safeguards=ALL_SAFEGUARDS,
            expected_minutes=3,
        )
    )
    clock.advance(2.5)
    back = clock.now
    flow.return_(Return(practice="p1", actor="t-007", exit=x.id, checked_in=True))
    clock.advance(30)
    flow.end_session(EndSession(practice="p1", actor="t-007", session=s.id))
    clock.advance(60)
    signed = flow.sign_exit(SignExit(practice="p1", actor="t-007", exit=x.id))
    assert signed == Exit(
        x.id,
        s.id,
        "declared",
        left,
        reason="technical",
        reason_note="Video link dropped.",
        returned_at=back,
        client_informed="before_leaving",
        explanation=WORDS,
        safeguards=frozenset(ALL_SAFEGUARDS),
        checked_in=True,
        signed_at=clock.now,
        expected_minutes=3,
    )


def test_a_health_emergency_from_tap_to_signature(
    flow: Workflow, clock: Clock, state: MemoryState
) -> None:
    s = start(flow)
    clock.advance(15)
    left = clock.now
    x = flow.declare_exit(
        DeclareExit(
            practice="p1",
            actor="t-007",
            session=s.id,
            reason="health_emergency",
            safeguards=("records_secured",),
        )
    )
    clock.advance(1)
    flow.decide_ems(DecideEms(practice="p1", actor="t-007", exit=x.id, ems="called"))
    flow.arrange_attendant(
        ArrangeAttendant(practice="p1", actor="t-007", exit=x.id, client_attended_by="staff-3")
    )
    for safeguard in ("screen_locked", "door_closed"):
        flow.confirm_safeguard(
            ConfirmSafeguard(practice="p1", actor="t-007", exit=x.id, safeguard=safeguard)
        )
    clock.advance(25)
    back = clock.now
    flow.return_(Return(practice="p1", actor="t-007", exit=x.id))
    flow.check_in(CheckIn(practice="p1", actor="t-007", exit=x.id))
    explained = "I stepped out to call for help; you are safe now."
    flow.inform_client(
        InformClient(
            practice="p1",
            actor="t-007",
            exit=x.id,
            client_informed="after_return",
            explanation=explained,
        )
    )
    clock.advance(5)
    signed = flow.sign_exit(SignExit(practice="p1", actor="t-007", exit=x.id))
    assert signed == Exit(
        x.id,
        s.id,
        "declared",
        left,
        reason="health_emergency",
        returned_at=back,
        client_informed="after_return",
        explanation=explained,
        safeguards=frozenset(ALL_SAFEGUARDS),
        client_attended_by="staff-3",
        ems="called",
        checked_in=True,
        signed_at=clock.now,
    )
    exit_events = [e for e in state.events if e.subject == x.id]
    assert all(e.actor == "t-007" and e.practice == "p1" for e in exit_events)
    assert [e.at for e in exit_events] == sorted(e.at for e in exit_events)


def test_a_concern_is_raised_and_acknowledged(flow: Workflow, clock: Clock) -> None:
    s = start(flow)
    clock.advance(50)
    flow.end_session(EndSession(practice="p1", session=s.id))
    clock.advance(10)
    raised_at = clock.now
    text = "Nobody told me when the session would resume."
    k = flow.raise_concern(
        RaiseConcern(practice="p1", actor="client-0042", session=s.id, text=text)
    )
    clock.advance(60 * 24)
    acked = flow.acknowledge_concern(AcknowledgeConcern(practice="p1", actor="sup-1", concern=k.id))
    assert acked == Concern(k.id, s.id, raised_at, text, acknowledged_at=clock.now)


def test_an_exit_open_at_session_end_stays_open_and_can_be_signed(
    flow: Workflow, clock: Clock, state: MemoryState
) -> None:
    s = start(flow)
    x = flow.declare_exit(DeclareExit(practice="p1", session=s.id, reason="client_safety"))
    clock.advance(40)
    flow.end_session(EndSession(practice="p1", session=s.id))
    assert refused(flow, state, Return(practice="p1", exit=x.id)) == "session-not-in-progress"
    signed = flow.sign_exit(SignExit(practice="p1", exit=x.id))
    assert signed.returned_at is None
    assert signed.signed_at == clock.now


def test_a_sensor_exit_is_classified(flow: Workflow, clock: Clock, state: MemoryState) -> None:
    s = start(flow)
    clock.advance(5)
    with MemoryUnitOfWork(state) as uow:
        data = {"session": s.id, "source": "sensor", "left_at": "2024-03-04T09:05:00+00:00"}
        uow.ledger.append([Event("exit.declared", "p1", "e-sensed", clock.now, data, "sensor")])
        uow.commit()
    clock.advance(1)
    classified = flow.classify_exit(
        ClassifyExit(practice="p1", actor="t-007", exit="e-sensed", reason="technical")
    )
    assert (classified.source, classified.reason) == ("sensor", "technical")
    assert state.events[-1].kind == "exit.amended"


# --- the one-open-exit rule, tenancy, double taps, amendments -------------------------------


def test_one_open_exit_per_therapist_across_sessions(
    flow: Workflow, clock: Clock, state: MemoryState
) -> None:
    s1, s2 = start(flow), start(flow)
    other = start(flow, therapist="t-008")
    x1 = flow.declare_exit(DeclareExit(practice="p1", session=s1.id, reason="technical"))
    second = DeclareExit(practice="p1", session=s2.id, reason="technical")
    assert refused(flow, state, second) == "therapist-already-out"
    flow.declare_exit(DeclareExit(practice="p1", session=other.id, reason="technical"))
    clock.advance(2)
    flow.return_(Return(practice="p1", exit=x1.id))
    x2 = flow.declare_exit(second)
    clock.advance(2)
    flow.end_session(EndSession(practice="p1", session=s2.id))  # x2 stays open, s2 ended
    assert flow.declare_exit(DeclareExit(practice="p1", session=s1.id)).session == s1.id
    assert state.records[("exit", x2.id)] == x2  # still open, lasting to the end of s2


def test_another_practices_records_are_not_found(flow: Workflow, state: MemoryState) -> None:
    s = start(flow, practice="p2")
    x = flow.declare_exit(DeclareExit(practice="p2", session=s.id))
    assert refused(flow, state, DeclareExit(practice="p1", session=s.id)) == "not-found"
    assert refused(flow, state, Return(practice="p1", exit=x.id)) == "not-found"
    assert refused(flow, state, EndSession(practice="p1", session=s.id)) == "not-found"
    assert refused(flow, state, RaiseConcern(practice="p1", session=s.id, text="Hm.")) == (
        "not-found"
    )


def test_a_double_tap_on_a_safeguard_stores_nothing(flow: Workflow, state: MemoryState) -> None:
    s = start(flow)
    x = flow.declare_exit(DeclareExit(practice="p1", session=s.id, safeguards=("door_closed",)))
    before = list(state.events)
    tap = ConfirmSafeguard(practice="p1", exit=x.id, safeguard="door_closed")
    assert flow.confirm_safeguard(tap) == x
    assert state.events == before


def test_amend_sets_new_values_and_the_ledger_keeps_the_old(
    flow: Workflow, clock: Clock, state: MemoryState
) -> None:
    s = start(flow)
    x = flow.declare_exit(DeclareExit(practice="p1", session=s.id, reason="other"))
    clock.advance(4)
    flow.return_(Return(practice="p1", exit=x.id))
    first_return = clock.now
    clock.advance(10)
    amended = flow.amend(
        Amend(
            practice="p1",
            actor="sup-1",
            kind="exit",
            id=x.id,
            changes={"reason": "technical", "returned_at": "2024-03-04T09:03:00Z"},
            note="The therapist was back at 09:03; the tap came late.",
        )
    )
    assert isinstance(amended, Exit)
    assert (amended.reason, amended.returned_at) == ("technical", T0 + 3 * M)
    kinds = [(e.kind, e.data) for e in state.events if e.subject == x.id]
    assert kinds[0][0] == "exit.declared"
    assert kinds[0][1]["reason"] == "other"
    assert kinds[1] == ("exit.returned", {"returned_at": "2024-03-04T09:04:00+00:00"})
    assert first_return == T0 + 4 * M
    assert kinds[2] == (
        "exit.amended",
        {
            "changes": {"reason": "technical", "returned_at": "2024-03-04T09:03:00+00:00"},
            "note": "The therapist was back at 09:03; the tap came late.",
        },
    )
    assert state.events[-1].actor == "sup-1"


def test_refusals_store_nothing(flow: Workflow, clock: Clock, state: MemoryState) -> None:
    s = start(flow)
    x = flow.declare_exit(DeclareExit(practice="p1", session=s.id))
    cases: list[tuple[Command, str]] = [
        (Return(practice="p1", exit="e404"), "not-found"),
        (CheckIn(practice="p1", exit=x.id), "exit-not-returned"),
        (SignExit(practice="p1", exit=x.id), "exit-not-returned"),
        (DeclareExit(practice="p1", session=s.id), "therapist-already-out"),
        (DeclareExit(practice="p1", session=s.id, reason="lunch"), "therapist-already-out"),
        (ConfirmSafeguard(practice="p1", exit=x.id, safeguard="lights_off"), "unknown-safeguard"),
        (DecideEms(practice="p1", exit=x.id, ems="maybe"), "unknown-ems-decision"),
        (AcknowledgeConcern(practice="p1", concern="k404"), "not-found"),
        (RaiseConcern(practice="p1", session="s404", text="Hm."), "not-found"),
    ]
    for command, code in cases:
        assert refused(flow, state, command) == code
    clock.advance(1)
    flow.return_(Return(practice="p1", exit=x.id))
    assert refused(flow, state, Return(practice="p1", exit=x.id)) == "exit-not-open"
    flow.end_session(EndSession(practice="p1", session=s.id))
    assert refused(flow, state, EndSession(practice="p1", session=s.id)) == "session-already-ended"
    assert refused(flow, state, DeclareExit(practice="p1", session=s.id)) == (
        "session-not-in-progress"
    )
    flow.sign_exit(SignExit(practice="p1", exit=x.id))
    assert refused(flow, state, SignExit(practice="p1", exit=x.id)) == "exit-already-signed"


class _FailingLedger:
    """Applies the first event, then fails: a storage error in the middle of a command."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def append(self, events: Sequence[Event]) -> None:
        self._inner.append(events[:1])
        raise EvolveError("disk full")


class _FailingUnitOfWork(MemoryUnitOfWork):
    def __enter__(self) -> Self:
        super().__enter__()
        self.ledger = _FailingLedger(self.ledger)  # type: ignore[assignment,has-type,unused-ignore]
        return self


def test_a_command_stores_all_its_events_or_none(state: MemoryState, clock: Clock) -> None:
    s = start(Workflow(lambda: MemoryUnitOfWork(state), clock))
    before = list(state.events)
    failing = Workflow(lambda: _FailingUnitOfWork(state), clock)
    tap = DeclareExit(practice="p1", session=s.id, reason="technical", safeguards=ALL_SAFEGUARDS)
    with pytest.raises(EvolveError):
        failing.declare_exit(tap)
    assert state.events == before
    assert not any(isinstance(r, Exit) for r in state.records.values())


def test_new_ids_are_prefixed_unique_and_sort_by_time() -> None:
    made = [ids.new_id(ids.EXIT) for _ in range(1000)]
    assert len(set(made)) == 1000
    assert all(i.startswith("e_") and len(i) == 2 + ids.LENGTH for i in made)
    earlier, later = ids.encode(1_700_000_000_000, 2**80 - 1), ids.encode(1_700_000_000_001, 0)
    assert earlier < later
    assert set(earlier + later) <= set(ids.ALPHABET)


def test_workflow_ids_carry_the_kind_prefix(flow: Workflow) -> None:
    s = start(flow)
    x = flow.declare_exit(DeclareExit(practice="p1", session=s.id))
    k = flow.raise_concern(RaiseConcern(practice="p1", session=s.id, text="Hm."))
    assert (s.id[:2], x.id[:2], k.id[:2]) == ("s_", "e_", "k_")


# --- random sequences keep the invariants --------------------------------------------------

PRIVATE = ("client-0042", WORDS, "Too long a wait.", "Corrected.")
picks = st.integers(min_value=0, max_value=12)
practices = st.sampled_from(["p1"] * 7 + ["p2"])


class WorkflowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = new_state()
        self.clock = Clock()
        self.flow = Workflow(lambda: MemoryUnitOfWork(self.state), self.clock)
        self.sessions: list[str] = []
        self.exits: list[str] = []
        self.concerns: list[str] = []
        self.outcomes: Counter[str] = Counter()

    def run(self, command: Command) -> Any:
        """The command's record, or None when refused (having checked it stored nothing)."""
        before = list(self.state.events)
        try:
            record = self.flow.handle(command)
        except ProtocolError as error:
            refusal = error
        else:
            self.outcomes[type(command).__name__] += 1
            return record
        assert self.state.events == before, "a refused command stored events"
        assert not any(p in refusal.message for p in PRIVATE)
        self.outcomes[f"{type(command).__name__}: {refusal.code}"] += 1
        return None

    @staticmethod
    def pick(ids: list[str], index: int) -> str:
        """Mostly a recent record; now and then an id nobody made."""
        return "x-unknown" if index == 0 or not ids else ids[-(index % len(ids)) - 1]

    @initialize()
    def two_sessions_in_progress(self) -> None:
        for therapist in ("t-007", "t-008"):
            self.start_session(therapist, "p1")

    @rule(minutes=st.integers(min_value=-2, max_value=30), seconds=st.integers(0, 59))
    def time_passes(self, minutes: int, seconds: int) -> None:
        self.clock.now += minutes * M + seconds * MICROS_PER_SECOND

    @rule(therapist=st.sampled_from(["t-007", "t-008"]), practice=practices)
    def start_session(self, therapist: str, practice: str) -> None:
        command = StartSession(
            practice=practice,
            actor=therapist,
            therapist=therapist,
            client="client-0042",
            room="r1",
            modality="telehealth",
        )
        self.sessions.append(self.run(command).id)
        self.clock.advance(1)

    @rule(
        i=picks,
        practice=practices,
        reason=st.sampled_from([*REASONS, None]),
        safeguards=st.lists(st.sampled_from(SAFEGUARDS), max_size=3),
        informed=st.booleans(),
        garbled=st.sampled_from([False] * 9 + [True]),
    )
    def declare_exit(
        self,
        i: int,
        practice: str,
        reason: str | None,
        safeguards: list[str],
        informed: bool,
        garbled: bool,
    ) -> None:
        command = DeclareExit(
            practice=practice,
            session=self.pick(self.sessions, i),
            reason="lunch" if garbled else reason,
            client_informed="before_leaving" if informed else "not_informed",
            explanation=WORDS if informed else None,
            safeguards=tuple(safeguards),
        )
        if (x := self.run(command)) is not None:
            self.exits.append(x.id)

    @precondition(lambda self: self.exits)
    @rule(i=picks, practice=practices, checked_in=st.booleans())
    def return_(self, i: int, practice: str, checked_in: bool) -> None:
        self.run(Return(practice=practice, exit=self.pick(self.exits, i), checked_in=checked_in))

    @precondition(lambda self: self.exits)
    @rule(i=picks, practice=practices)
    def check_in(self, i: int, practice: str) -> None:
        self.run(CheckIn(practice=practice, exit=self.pick(self.exits, i)))

    @precondition(lambda self: self.exits)
    @rule(i=picks, practice=practices)
    def sign(self, i: int, practice: str) -> None:
        self.run(SignExit(practice=practice, exit=self.pick(self.exits, i)))

    @precondition(lambda self: self.exits)
    @rule(i=picks, when=st.sampled_from(["before_leaving", "after_return", "not_informed"]))
    def inform(self, i: int, when: str) -> None:
        exit_id = self.pick(self.exits, i)
        self.run(InformClient(practice="p1", exit=exit_id, client_informed=when, explanation=WORDS))

    @precondition(lambda self: self.exits)
    @rule(i=picks, safeguard=st.sampled_from(SAFEGUARDS))
    def confirm_safeguard(self, i: int, safeguard: str) -> None:
        exit_id = self.pick(self.exits, i)
        self.run(ConfirmSafeguard(practice="p1", exit=exit_id, safeguard=safeguard))

    @precondition(lambda self: self.exits)
    @rule(i=picks, ems=st.sampled_from(["called", "not_needed", "maybe"]))
    def decide_ems(self, i: int, ems: str) -> None:
        self.run(DecideEms(practice="p1", exit=self.pick(self.exits, i), ems=ems))

    @precondition(lambda self: self.exits)
    @rule(i=picks)
    def arrange_attendant(self, i: int) -> None:
        exit_id = self.pick(self.exits, i)
        self.run(ArrangeAttendant(practice="p1", exit=exit_id, client_attended_by="staff-3"))

    @precondition(lambda self: self.exits)
    @rule(i=picks, reason=st.sampled_from(REASONS))
    def classify(self, i: int, reason: str) -> None:
        self.run(ClassifyExit(practice="p1", exit=self.pick(self.exits, i), reason=reason))

    @rule(i=picks, practice=practices)
    def end_session(self, i: int, practice: str) -> None:
        self.run(EndSession(practice=practice, session=self.pick(self.sessions, i)))

    @rule(i=picks, practice=practices)
    def raise_concern(self, i: int, practice: str) -> None:
        command = RaiseConcern(
            practice=practice, session=self.pick(self.sessions, i), text="Too long a wait."
        )
        if (k := self.run(command)) is not None:
            self.concerns.append(k.id)

    @precondition(lambda self: self.concerns)
    @rule(i=picks)
    def acknowledge(self, i: int) -> None:
        self.run(AcknowledgeConcern(practice="p1", concern=self.pick(self.concerns, i)))

    @precondition(lambda self: self.exits)
    @rule(
        i=picks,
        offset=st.one_of(st.none(), st.integers(min_value=-10, max_value=10)),
        source=st.sampled_from([None, "sensor", "declared"]),
    )
    def amend_exit(self, i: int, offset: int | None, source: str | None) -> None:
        exit_id = self.pick(self.exits, i)
        found = self.state.records.get(("exit", exit_id))
        base = found.left_at if isinstance(found, Exit) else T0
        returned = None if offset is None else base + offset * M
        changes: dict[str, Any] = {
            "returned_at": None if returned is None else format_instant(returned),
        }
        if source is not None:
            changes["source"] = source
        self.run(Amend(practice="p1", kind="exit", id=exit_id, changes=changes, note="Corrected."))

    @rule(i=picks, therapist=st.sampled_from(["t-007", "t-008"]))
    def amend_session_therapist(self, i: int, therapist: str) -> None:
        session_id = self.pick(self.sessions, i)
        changes = {"therapist": therapist}
        self.run(
            Amend(practice="p1", kind="session", id=session_id, changes=changes, note="Corrected.")
        )

    @invariant()
    def returns_never_precede_leaving(self) -> None:
        for record in self.state.records.values():
            if isinstance(record, Exit) and record.returned_at is not None:
                assert record.returned_at >= record.left_at
            if isinstance(record, Session) and record.end is not None:
                assert record.end > record.start

    @invariant()
    def acknowledgements_never_precede_concerns(self) -> None:
        for record in self.state.records.values():
            if isinstance(record, Concern) and record.acknowledged_at is not None:
                assert record.acknowledged_at >= record.raised_at

    @invariant()
    def at_most_one_open_exit_per_therapist(self) -> None:
        records = MemoryRecords(self.state.records)
        open_exits: Counter[tuple[str, str]] = Counter()
        for record in self.state.records.values():
            if isinstance(record, Exit) and record.returned_at is None:
                s = records.session(record.session)
                assert s is not None
                if s.in_progress:
                    open_exits[(s.practice, s.therapist)] += 1
        assert all(n <= 1 for n in open_exits.values()), open_exits

    @invariant()
    def the_records_are_the_ledger_folded(self) -> None:
        folded: dict[tuple[str, str], Any] = {}
        for event in self.state.events:
            key = (event.entity, event.subject)
            folded[key] = evolve(folded.get(key), event)
        assert folded == self.state.records


WorkflowMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_command_sequences_keep_the_invariants = WorkflowMachine.TestCase
