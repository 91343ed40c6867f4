"""Stepping out and everything that follows until the exit is signed."""

from typing import Final

from stepout.domain.commands import (
    ArrangeAttendant,
    CheckIn,
    ClassifyExit,
    ConfirmSafeguard,
    DecideEms,
    DeclareExit,
    ExitCommand,
    InformClient,
    Return,
    SignExit,
)
from stepout.domain.events import Event
from stepout.domain.instants import Instant
from stepout.domain.protocol.common import (
    Decision,
    Facts,
    ProtocolError,
    blank,
    choice,
    new_event,
    not_before,
    own_exit,
    own_session,
    required,
    ts,
)
from stepout.domain.records import Exit, Session
from stepout.domain.vocabulary import (
    CLIENT_INFORMED,
    EMS_DECISIONS,
    REASONS,
    SAFEGUARDS,
)

CLASSIFY_NOTE: Final = "Classified a sensor-detected exit."


def declare_exit(cmd: DeclareExit, facts: Facts, at: Instant, new_id: str) -> Decision:
    s = own_session(cmd, facts)
    if not s.in_progress:
        raise ProtocolError("session-not-in-progress", "This session is not in progress.")
    if facts.open_exit is not None:
        raise ProtocolError(
            "therapist-already-out",
            "You are already out of a session; record that return before stepping out again.",
        )
    if cmd.reason is not None:
        choice("reason", cmd.reason, REASONS)
    choice("client-informed", cmd.client_informed, CLIENT_INFORMED)
    if cmd.client_informed == "after_return":
        raise ProtocolError("exit-not-returned", "The client cannot be told after a return yet.")
    for safeguard in cmd.safeguards:
        choice("safeguard", safeguard, SAFEGUARDS)
    if cmd.ems is not None:
        choice("ems-decision", cmd.ems, EMS_DECISIONS)
    minutes = cmd.expected_minutes
    if minutes is not None and (isinstance(minutes, bool) or minutes <= 0):
        raise ProtocolError("invalid-value", "The expected minutes must be a whole number above 0.")
    if cmd.client_attended_by is not None:
        required("person staying with the client", cmd.client_attended_by)
    not_before(at, s.start)
    events = [
        new_event(
            cmd,
            "exit.declared",
            new_id,
            at,
            session=s.id,
            source="declared",
            reason=cmd.reason,
            reason_note=cmd.reason_note,
            left_at=ts(at),
            expected_minutes=minutes,
        )
    ]
    if cmd.client_informed != "not_informed" or cmd.explanation is not None:
        events.append(
            new_event(
                cmd,
                "exit.client_informed",
                new_id,
                at,
                client_informed=cmd.client_informed,
                explanation=cmd.explanation,
            )
        )
    for safeguard in sorted(set(cmd.safeguards)):
        events.append(new_event(cmd, "exit.safeguard_confirmed", new_id, at, safeguard=safeguard))
    if cmd.client_attended_by is not None:
        events.append(
            new_event(
                cmd,
                "exit.attendant_arranged",
                new_id,
                at,
                client_attended_by=cmd.client_attended_by,
            )
        )
    if cmd.ems is not None:
        events.append(
            new_event(cmd, "exit.ems_decided", new_id, at, ems=cmd.ems, note=cmd.ems_note)
        )
    return Decision("exit", new_id, tuple(events))


def on_exit(cmd: ExitCommand, facts: Facts, at: Instant) -> Decision:
    x, s = own_exit(cmd, facts)
    events = _exit_events(cmd, x, s, at)
    return Decision("exit", x.id, tuple(events))


def _unsigned(x: Exit) -> None:
    if x.signed_at is not None:
        raise ProtocolError(
            "exit-already-signed", "This exit is already signed; amend it to change the record."
        )


def _exit_events(cmd: ExitCommand, x: Exit, s: Session, at: Instant) -> list[Event]:
    """The events of a command on exit `x` of session `s` ([] for a double tap)."""
    match cmd:
        case InformClient():
            return _inform(cmd, x, at)
        case ConfirmSafeguard():
            choice("safeguard", cmd.safeguard, SAFEGUARDS)
            if cmd.safeguard in x.safeguards:
                return []
            _unsigned(x)
            return [new_event(cmd, "exit.safeguard_confirmed", x.id, at, safeguard=cmd.safeguard)]
        case DecideEms():
            choice("ems-decision", cmd.ems, EMS_DECISIONS)
            if x.ems == cmd.ems and blank(cmd.note):
                return []
            _unsigned(x)
            return [new_event(cmd, "exit.ems_decided", x.id, at, ems=cmd.ems, note=cmd.note)]
        case ArrangeAttendant():
            required("person staying with the client", cmd.client_attended_by)
            if x.client_attended_by == cmd.client_attended_by:
                return []
            _unsigned(x)
            who = cmd.client_attended_by
            return [new_event(cmd, "exit.attendant_arranged", x.id, at, client_attended_by=who)]
        case Return():
            return _return(cmd, x, s, at)
        case CheckIn():
            if x.returned_at is None:
                raise ProtocolError(
                    "exit-not-returned", "Check in with the client after returning."
                )
            if x.checked_in:
                return []
            _unsigned(x)
            return [new_event(cmd, "exit.checked_in", x.id, at, checked_in=True)]
        case SignExit():
            if x.signed_at is not None:
                raise ProtocolError("exit-already-signed", "This exit is already signed.")
            if x.returned_at is None and s.in_progress:
                raise ProtocolError("exit-not-returned", "Sign the exit after returning.")
            not_before(at, x.left_at, x.returned_at)
            return [new_event(cmd, "exit.signed", x.id, at, signed_at=ts(at))]
        case ClassifyExit():
            return _classify(cmd, x, at)


def _inform(cmd: InformClient, x: Exit, at: Instant) -> list[Event]:
    choice("client-informed", cmd.client_informed, ("before_leaving", "after_return"))
    if (x.client_informed, x.explanation) == (cmd.client_informed, cmd.explanation):
        return []
    _unsigned(x)
    if x.client_informed != "not_informed" and not blank(x.explanation):
        raise ProtocolError(
            "client-already-informed",
            "What the client was told is already recorded; amend the exit to change it.",
        )
    if cmd.client_informed == "before_leaving" and x.returned_at is not None:
        raise ProtocolError(
            "exit-not-open",
            "You are already back; to record what was said before leaving, amend the exit.",
        )
    if cmd.client_informed == "after_return" and x.returned_at is None:
        raise ProtocolError("exit-not-returned", "The client can be told after returning.")
    informed = new_event(
        cmd,
        "exit.client_informed",
        x.id,
        at,
        client_informed=cmd.client_informed,
        explanation=cmd.explanation,
    )
    return [informed]


def _return(cmd: Return, x: Exit, s: Session, at: Instant) -> list[Event]:
    if x.returned_at is not None:
        raise ProtocolError("exit-not-open", "The return from this exit is already recorded.")
    if not s.in_progress:
        raise ProtocolError(
            "session-not-in-progress",
            "This session has ended; amend the exit to record when you came back.",
        )
    _unsigned(x)
    not_before(at, x.left_at)
    events = [new_event(cmd, "exit.returned", x.id, at, returned_at=ts(at))]
    if cmd.checked_in:
        events.append(new_event(cmd, "exit.checked_in", x.id, at, checked_in=True))
    return events


def _classify(cmd: ClassifyExit, x: Exit, at: Instant) -> list[Event]:
    if x.source != "sensor":
        raise ProtocolError("not-a-sensor-exit", "Only an exit a sensor detected is classified.")
    choice("reason", cmd.reason, REASONS)
    if (x.reason, x.reason_note) == (cmd.reason, cmd.reason_note):
        return []
    if x.reason is not None:
        raise ProtocolError(
            "exit-already-classified", "This exit already has a reason; amend it to change it."
        )
    changes = {"reason": cmd.reason, "reason_note": cmd.reason_note}
    return [new_event(cmd, "exit.amended", x.id, at, changes=changes, note=CLASSIFY_NOTE)]
