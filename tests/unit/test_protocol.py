"""The pure protocol: which events each command produces, and what it refuses (with which code)."""

from dataclasses import replace
from typing import Any

import pytest

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
from stepout.domain.events import evolve
from stepout.domain.instants import MICROS_PER_MINUTE, format_instant, parse_instant
from stepout.domain.practice import Practice
from stepout.domain.protocol import Facts, ProtocolError, decide
from stepout.domain.records import Concern, Exit, Session

M = MICROS_PER_MINUTE
T0 = parse_instant("2024-03-04T09:00:00+00:00")
AT = T0 + 20 * M
WORDS = "Stepping out to fix the video link."
P1 = Practice("p1", "Practice One")
S1 = Session("s1", "p1", "t-007", "client-0042", "r1", "in_person", T0, None, ("90837",))
S1_ENDED = replace(S1, end=T0 + 50 * M)
X1 = Exit("e1", "s1", "declared", T0 + 10 * M, reason="technical")
X1_BACK = replace(X1, returned_at=T0 + 13 * M)
X1_SIGNED = replace(X1_BACK, signed_at=T0 + 14 * M)
SENSED = Exit("e2", "s1", "sensor", T0 + 10 * M)
K1 = Concern("k1", "s1", T0 + 55 * M, "I was left alone without a word.")
ON_X1 = Facts(session=S1, exit=X1)
ON_BACK = Facts(session=S1, exit=X1_BACK)


def kinds(command: Command, facts: Facts, new_id: str | None = None) -> list[str]:
    return [e.kind for e in decide(command, facts, at=AT, new_id=new_id).events]


def refusal(command: Command, facts: Facts) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decide(command, facts, at=AT, new_id="new-1")
    return caught.value


def declare(**fields: Any) -> DeclareExit:
    return DeclareExit(practice="p1", actor="t-007", session="s1", **fields)


def start(**fields: Any) -> StartSession:
    base: dict[str, Any] = {
        "practice": "p1",
        "therapist": "t-007",
        "client": "client-0042",
        "room": "r1",
        "modality": "telehealth",
    }
    return StartSession(**{**base, **fields})


def amend(kind: str, changes: dict[str, Any], note: str = "Corrected after review.") -> Amend:
    ids = {"session": "s1", "exit": "e1", "concern": "k1"}
    return Amend(practice="p1", actor="sup-1", kind=kind, id=ids[kind], changes=changes, note=note)


# --- what commands produce -----------------------------------------------------------------


def test_start_session_starts_now_with_the_given_details() -> None:
    decision = decide(start(billed_codes=("90837",)), Facts(practice=P1), at=AT, new_id="s9")
    (event,) = decision.events
    session = evolve(None, event)
    assert (decision.entity, decision.subject) == ("session", "s9")
    assert session == Session(
        "s9", "p1", "t-007", "client-0042", "r1", "telehealth", AT, None, ("90837",)
    )


def test_one_tap_declares_the_exit_and_everything_given_with_it() -> None:
    tap = declare(
        reason="health_emergency",
        reason_note="Client short of breath.",
        client_informed="before_leaving",
        explanation=WORDS,
        safeguards=("screen_locked", "records_secured", "screen_locked"),
        expected_minutes=10,
        client_attended_by="staff-3",
        ems="called",
        ems_note="Ambulance on its way.",
    )
    decision = decide(tap, Facts(session=S1), at=AT, new_id="e9")
    assert [e.kind for e in decision.events] == [
        "exit.declared",
        "exit.client_informed",
        "exit.safeguard_confirmed",
        "exit.safeguard_confirmed",
        "exit.attendant_arranged",
        "exit.ems_decided",
    ]
    assert all(e.subject == "e9" and e.actor == "t-007" and e.at == AT for e in decision.events)
    folded: Any = None
    for event in decision.events:
        folded = evolve(folded, event)
    assert folded == Exit(
        "e9",
        "s1",
        "declared",
        AT,
        reason="health_emergency",
        reason_note="Client short of breath.",
        client_informed="before_leaving",
        explanation=WORDS,
        safeguards=frozenset({"screen_locked", "records_secured"}),
        client_attended_by="staff-3",
        ems="called",
        expected_minutes=10,
    )


def test_a_bare_tap_declares_only_the_exit() -> None:
    assert kinds(declare(), Facts(session=S1), "e9") == ["exit.declared"]


def test_return_with_check_in_records_both() -> None:
    command = Return(practice="p1", exit="e1", checked_in=True)
    assert kinds(command, ON_X1) == ["exit.returned", "exit.checked_in"]


def test_an_exit_still_open_when_its_session_ended_can_be_signed() -> None:
    command = SignExit(practice="p1", exit="e1")
    assert kinds(command, Facts(session=S1_ENDED, exit=X1)) == ["exit.signed"]


def test_ending_a_session_with_an_exit_open_is_allowed() -> None:
    command = EndSession(practice="p1", session="s1")
    assert kinds(command, Facts(session=S1, exits=(X1,))) == ["session.ended"]


def test_classifying_a_sensor_exit_amends_its_reason_and_note() -> None:
    command = ClassifyExit(practice="p1", exit="e2", reason="technical", reason_note="Wi-Fi reset.")
    (event,) = decide(command, Facts(session=S1, exit=SENSED), at=AT).events
    assert event.kind == "exit.amended"
    assert evolve(SENSED, event) == replace(SENSED, reason="technical", reason_note="Wi-Fi reset.")


def test_amend_records_only_what_changes_in_normal_form() -> None:
    changes = {"returned_at": "2024-03-04T10:14:00+01:00", "reason": "technical"}
    (event,) = decide(amend("exit", changes), ON_BACK, at=AT).events
    assert event.data == {
        "changes": {"returned_at": format_instant(T0 + 14 * M)},
        "note": "Corrected after review.",
    }


@pytest.mark.parametrize(
    ("command", "facts"),
    [
        (
            ConfirmSafeguard(practice="p1", exit="e1", safeguard="door_closed"),
            Facts(session=S1, exit=replace(X1, safeguards=frozenset({"door_closed"}))),
        ),
        (
            DecideEms(practice="p1", exit="e1", ems="called"),
            Facts(session=S1, exit=replace(X1, ems="called")),
        ),
        (
            ArrangeAttendant(practice="p1", exit="e1", client_attended_by="staff-3"),
            Facts(session=S1, exit=replace(X1, client_attended_by="staff-3")),
        ),
        (
            CheckIn(practice="p1", exit="e1"),
            Facts(session=S1, exit=replace(X1_BACK, checked_in=True)),
        ),
        (
            InformClient(
                practice="p1", exit="e1", client_informed="before_leaving", explanation=WORDS
            ),
            Facts(
                session=S1,
                exit=replace(X1_SIGNED, client_informed="before_leaving", explanation=WORDS),
            ),
        ),
        (
            ClassifyExit(practice="p1", exit="e2", reason="technical"),
            Facts(session=S1, exit=replace(SENSED, reason="technical")),
        ),
        (amend("exit", {"reason": "technical"}), ON_X1),
    ],
    ids=["safeguard", "ems", "attendant", "check-in", "inform", "classify", "amend"],
)
def test_a_double_tap_is_a_no_op(command: Command, facts: Facts) -> None:
    assert kinds(command, facts) == []


# --- what the protocol refuses -------------------------------------------------------------

P2_SESSION = replace(S1, practice="p2")
OTHER_EXIT = Facts(session=P2_SESSION, exit=X1)
REFUSALS: list[tuple[str, Command, Facts, str]] = [
    ("start in an unknown practice", start(), Facts(), "not-found"),
    (
        "start with an unknown modality",
        start(modality="phone"),
        Facts(practice=P1),
        "unknown-modality",
    ),
    (
        "start with an unknown code",
        start(billed_codes=("99999",)),
        Facts(practice=P1),
        "unknown-code",
    ),
    ("start without a therapist", start(therapist=" "), Facts(practice=P1), "missing-value"),
    ("exit on an unknown session", declare(), Facts(), "not-found"),
    ("exit on another practice's session", declare(), Facts(session=P2_SESSION), "not-found"),
    ("exit on an ended session", declare(), Facts(session=S1_ENDED), "session-not-in-progress"),
    ("a second open exit", declare(), Facts(session=S1, open_exit=X1), "therapist-already-out"),
    ("an unknown reason", declare(reason="lunch"), Facts(session=S1), "unknown-reason"),
    (
        "an unknown safeguard",
        declare(safeguards=("lights_off",)),
        Facts(session=S1),
        "unknown-safeguard",
    ),
    ("an unknown ems decision", declare(ems="maybe"), Facts(session=S1), "unknown-ems-decision"),
    (
        "told after return at the tap",
        declare(client_informed="after_return"),
        Facts(session=S1),
        "exit-not-returned",
    ),
    ("no expected minutes", declare(expected_minutes=0), Facts(session=S1), "invalid-value"),
    (
        "leaving before the session started",
        declare(),
        Facts(session=replace(S1, start=AT + 1)),
        "clock-behind",
    ),
    ("an unknown exit", Return(practice="p1", exit="e404"), Facts(), "not-found"),
    ("another practice's exit", Return(practice="p1", exit="e1"), OTHER_EXIT, "not-found"),
    ("returning twice", Return(practice="p1", exit="e1"), ON_BACK, "exit-not-open"),
    (
        "returning after the session ended",
        Return(practice="p1", exit="e1"),
        Facts(session=S1_ENDED, exit=X1),
        "session-not-in-progress",
    ),
    (
        "returning before leaving",
        Return(practice="p1", exit="e1"),
        Facts(session=S1, exit=replace(X1, left_at=AT + 1)),
        "clock-behind",
    ),
    ("check-in before return", CheckIn(practice="p1", exit="e1"), ON_X1, "exit-not-returned"),
    (
        "check-in on a signed exit",
        CheckIn(practice="p1", exit="e1"),
        Facts(session=S1, exit=X1_SIGNED),
        "exit-already-signed",
    ),
    (
        "signing twice",
        SignExit(practice="p1", exit="e1"),
        Facts(session=S1, exit=X1_SIGNED),
        "exit-already-signed",
    ),
    (
        "signing an open exit in a session in progress",
        SignExit(practice="p1", exit="e1"),
        ON_X1,
        "exit-not-returned",
    ),
    (
        "told before leaving, recorded after return",
        InformClient(practice="p1", exit="e1", client_informed="before_leaving", explanation=WORDS),
        ON_BACK,
        "exit-not-open",
    ),
    (
        "told after return while still out",
        InformClient(practice="p1", exit="e1", client_informed="after_return", explanation=WORDS),
        ON_X1,
        "exit-not-returned",
    ),
    (
        "informing with not_informed",
        InformClient(practice="p1", exit="e1", client_informed="not_informed", explanation=None),
        ON_X1,
        "unknown-client-informed",
    ),
    (
        "informing again with other words",
        InformClient(
            practice="p1", exit="e1", client_informed="after_return", explanation="Back now."
        ),
        Facts(
            session=S1, exit=replace(X1_BACK, client_informed="before_leaving", explanation=WORDS)
        ),
        "client-already-informed",
    ),
    (
        "an unknown safeguard",
        ConfirmSafeguard(practice="p1", exit="e1", safeguard="lights_off"),
        ON_X1,
        "unknown-safeguard",
    ),
    (
        "a safeguard on a signed exit",
        ConfirmSafeguard(practice="p1", exit="e1", safeguard="door_closed"),
        Facts(session=S1, exit=X1_SIGNED),
        "exit-already-signed",
    ),
    (
        "an unknown ems decision",
        DecideEms(practice="p1", exit="e1", ems="later"),
        ON_X1,
        "unknown-ems-decision",
    ),
    (
        "nobody staying",
        ArrangeAttendant(practice="p1", exit="e1", client_attended_by=""),
        ON_X1,
        "missing-value",
    ),
    (
        "ending twice",
        EndSession(practice="p1", session="s1"),
        Facts(session=S1_ENDED),
        "session-already-ended",
    ),
    ("ending an unknown session", EndSession(practice="p1", session="s404"), Facts(), "not-found"),
    (
        "ending before the last return",
        EndSession(practice="p1", session="s1"),
        Facts(session=S1, exits=(replace(X1, returned_at=AT + 1),)),
        "clock-behind",
    ),
    (
        "ending at the very start",
        EndSession(practice="p1", session="s1"),
        Facts(session=replace(S1, start=AT)),
        "clock-behind",
    ),
    (
        "a concern on an unknown session",
        RaiseConcern(practice="p1", session="s404", text="Too long."),
        Facts(),
        "not-found",
    ),
    (
        "a concern on another practice's session",
        RaiseConcern(practice="p1", session="s1", text="Hm."),
        Facts(session=P2_SESSION),
        "not-found",
    ),
    (
        "an empty concern",
        RaiseConcern(practice="p1", session="s1", text="  "),
        Facts(session=S1),
        "missing-value",
    ),
    (
        "acknowledging twice",
        AcknowledgeConcern(practice="p1", concern="k1"),
        Facts(session=S1, concern=replace(K1, acknowledged_at=AT)),
        "concern-already-acknowledged",
    ),
    (
        "acknowledging an unknown concern",
        AcknowledgeConcern(practice="p1", concern="k404"),
        Facts(),
        "not-found",
    ),
    (
        "classifying a declared exit",
        ClassifyExit(practice="p1", exit="e1", reason="technical"),
        ON_X1,
        "not-a-sensor-exit",
    ),
    (
        "classifying with an unknown reason",
        ClassifyExit(practice="p1", exit="e2", reason="nap"),
        Facts(session=S1, exit=SENSED),
        "unknown-reason",
    ),
    (
        "classifying twice",
        ClassifyExit(practice="p1", exit="e2", reason="other"),
        Facts(session=S1, exit=replace(SENSED, reason="technical")),
        "exit-already-classified",
    ),
    (
        "amending without a note",
        amend("exit", {"reason": "other"}, note=" "),
        ON_X1,
        "missing-value",
    ),
    ("amending nothing", amend("exit", {}), ON_X1, "no-changes"),
    ("amending an id", amend("exit", {"id": "e7"}), ON_X1, "field-not-amendable"),
    (
        "moving an exit to another session",
        amend("exit", {"session": "s2"}),
        ON_X1,
        "field-not-amendable",
    ),
    (
        "moving a session to another practice",
        amend("session", {"practice": "p2"}),
        Facts(session=S1),
        "field-not-amendable",
    ),
    (
        "an unknown field",
        amend("concern", {"mood": "calm"}),
        Facts(session=S1, concern=K1),
        "field-not-amendable",
    ),
    (
        "an amendment of an unknown kind",
        replace(amend("exit", {"reason": "other"}), kind="room"),
        ON_X1,
        "invalid-value",
    ),
    ("amending an unknown reason", amend("exit", {"reason": "lunch"}), ON_X1, "invalid-value"),
    (
        "amending a time without offset",
        amend("exit", {"returned_at": "2024-03-04T09:14:00"}),
        ON_X1,
        "invalid-value",
    ),
    (
        "amending a return before the leaving",
        amend("exit", {"returned_at": format_instant(T0)}),
        ON_X1,
        "invalid-value",
    ),
    (
        "amending an unknown safeguard",
        amend("exit", {"safeguards": ["lights_off"]}),
        ON_X1,
        "invalid-value",
    ),
    (
        "amending an end before the start",
        amend("session", {"end": format_instant(T0 - M)}),
        Facts(session=S1_ENDED),
        "invalid-value",
    ),
    (
        "amending an acknowledgement before the concern",
        amend("concern", {"acknowledged_at": format_instant(T0)}),
        Facts(session=S1, concern=K1),
        "invalid-value",
    ),
    (
        "amending the end of a session in progress",
        amend("session", {"end": format_instant(AT)}),
        Facts(session=S1),
        "session-in-progress",
    ),
    (
        "amending a session in progress",
        amend("session", {"billed_codes": ["90834"]}),
        Facts(session=S1),
        "session-in-progress",
    ),
    (
        "reopening an exit of a session in progress",
        amend("exit", {"returned_at": None}),
        ON_BACK,
        "session-in-progress",
    ),
    (
        "amending another practice's exit",
        amend("exit", {"reason": "other"}),
        OTHER_EXIT,
        "not-found",
    ),
]


@pytest.mark.parametrize(
    ("command", "facts", "code"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refused_with_a_stable_code_and_a_plain_message(
    command: Command, facts: Facts, code: str
) -> None:
    error = refusal(command, facts)
    assert error.code == code
    assert error.message.endswith(".")
    for private in ("client-0042", WORDS, "Client short of breath", "lunch", "lights_off", "mood"):
        assert private not in error.message


def test_reopening_an_exit_after_its_session_ended_is_a_correction_it_may_make() -> None:
    facts = Facts(session=S1_ENDED, exit=X1_BACK)
    assert kinds(amend("exit", {"returned_at": None}), facts) == ["exit.amended"]


def test_an_ended_session_is_amended_field_by_field() -> None:
    changes = {"therapist": "t-008", "billed_codes": ["90834"]}
    (event,) = decide(amend("session", changes), Facts(session=S1_ENDED), at=AT).events
    assert evolve(S1_ENDED, event) == replace(S1_ENDED, therapist="t-008", billed_codes=("90834",))


def test_a_creating_command_without_an_id_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="new_id"):
        decide(declare(), Facts(session=S1), at=AT)
