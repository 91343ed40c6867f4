"""Stepping out and everything that follows until the exit is signed."""

from typing import Final

from stepout.domain.commands import (
    ArrangeAttendant,
    CheckIn,
    ClassifyExit,
    ConfirmSafeguard,
    DecideEms,
    DeclareExit,
    DetectExit,
    ExitCommand,
    InformClient,
    Return,
    SensorReturn,
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
MERGE_NOTE: Final = "Declared by the therapist during a sensor-detected exit."


def declare_exit(cmd: DeclareExit, facts: Facts, at: Instant, new_id: str) -> Decision:
    """A new exit; or, while a sensor-detected exit of this session is open, the declaration
    of that exit (one absence is one exit): its reason, and what the tap says on it."""
    s = own_session(cmd, facts)
    if not s.in_progress:
        raise ProtocolError("session-not-in-progress", "This session is not in progress.")
    detected = facts.open_exit
    if detected is not None and not _declarable(detected, s, cmd.reason):
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
    if detected is not None:
        return Decision("exit", detected.id, tuple(_declared_on(cmd, detected, at)))
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
    events.extend(_said_at_the_tap(cmd, new_id, at))
    return Decision("exit", new_id, tuple(events))


def _declarable(x: Exit, s: Session, reason: str | None) -> bool:
    """Whether a declaration lands on the open exit `x`: a sensor's, in this session, not
    signed, and not already given another reason."""
    return (
        x.source == "sensor"
        and x.session == s.id
        and x.signed_at is None
        and (x.reason is None or reason is None or x.reason == reason)
    )


def _declared_on(cmd: DeclareExit, x: Exit, at: Instant) -> list[Event]:
    """The declaration's events on the sensor's open exit `x` (its times stay the sensor's)."""
    events: list[Event] = []
    changes = {
        name: value
        for name, value in (("reason", cmd.reason), ("reason_note", cmd.reason_note))
        if value is not None and getattr(x, name) is None
    }
    if changes:
        events.append(new_event(cmd, "exit.amended", x.id, at, changes=changes, note=MERGE_NOTE))
    informed = cmd.client_informed != "not_informed" or cmd.explanation is not None
    if informed and (x.client_informed, x.explanation) != (cmd.client_informed, cmd.explanation):
        if x.client_informed != "not_informed" and not blank(x.explanation):
            raise ProtocolError(
                "client-already-informed",
                "What the client was told is already recorded; amend the exit to change it.",
            )
        events.extend(_informed(cmd, x.id, at))
    for safeguard in sorted(set(cmd.safeguards) - x.safeguards):
        events.append(new_event(cmd, "exit.safeguard_confirmed", x.id, at, safeguard=safeguard))
    if cmd.client_attended_by is not None and cmd.client_attended_by != x.client_attended_by:
        who = cmd.client_attended_by
        events.append(new_event(cmd, "exit.attendant_arranged", x.id, at, client_attended_by=who))
    if cmd.ems is not None and (cmd.ems != x.ems or not blank(cmd.ems_note)):
        events.append(new_event(cmd, "exit.ems_decided", x.id, at, ems=cmd.ems, note=cmd.ems_note))
    return events


def _said_at_the_tap(cmd: DeclareExit, exit_id: str, at: Instant) -> list[Event]:
    """The events of what the tap says beyond the leaving."""
    events = _informed(cmd, exit_id, at)
    for safeguard in sorted(set(cmd.safeguards)):
        events.append(new_event(cmd, "exit.safeguard_confirmed", exit_id, at, safeguard=safeguard))
    if cmd.client_attended_by is not None:
        who = cmd.client_attended_by
        events.append(
            new_event(cmd, "exit.attendant_arranged", exit_id, at, client_attended_by=who)
        )
    if cmd.ems is not None:
        events.append(
            new_event(cmd, "exit.ems_decided", exit_id, at, ems=cmd.ems, note=cmd.ems_note)
        )
    return events


def _informed(cmd: DeclareExit, exit_id: str, at: Instant) -> list[Event]:
    if cmd.client_informed == "not_informed" and cmd.explanation is None:
        return []
    said = {"client_informed": cmd.client_informed, "explanation": cmd.explanation}
    return [new_event(cmd, "exit.client_informed", exit_id, at, **said)]


def detect_exit(cmd: DetectExit, facts: Facts, at: Instant, new_id: str) -> Decision:
    """A sensor-detected exit (no reason; the therapist classifies it on return), unless the
    absence is one already recorded: the therapist has an exit open (declared first, or the
    sensor's own), or an exit of this session ended after the sensor's `left_at`."""
    s = own_session(cmd, facts)
    if not s.in_progress:
        raise ProtocolError("session-not-in-progress", "This session is not in progress.")
    if cmd.left_at < s.start or cmd.left_at > at:
        raise ProtocolError("invalid-value", "The sensor's time is outside the session.")
    if facts.open_exit is not None:
        return Decision("exit", facts.open_exit.id)
    overlapping = [x for x in facts.exits if x.returned_at is None or x.returned_at > cmd.left_at]
    if overlapping:
        return Decision("exit", overlapping[-1].id)
    detected = new_event(
        cmd,
        "exit.declared",
        new_id,
        at,
        session=s.id,
        source="sensor",
        reason=None,
        reason_note=None,
        left_at=ts(cmd.left_at),
        expected_minutes=None,
    )
    return Decision("exit", new_id, (detected,))


def sensor_return(cmd: SensorReturn, facts: Facts, at: Instant) -> Decision:
    """The end of the therapist's open sensor-detected exit in this session; nothing when the
    therapist tapped "back" first (or the open exit is a declared one: the therapist ends
    that)."""
    s = own_session(cmd, facts)
    x = facts.open_exit
    if x is None or x.session != s.id or x.source != "sensor" or not s.in_progress:
        return Decision("session", s.id)
    if cmd.returned_at > at:
        raise ProtocolError("invalid-value", "The sensor's time is in the future.")
    returned_at = max(cmd.returned_at, x.left_at)
    back = new_event(cmd, "exit.returned", x.id, at, returned_at=ts(returned_at))
    return Decision("exit", x.id, (back,))


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
    if x.returned_at is not None and x.source == "sensor":
        # The sensor saw the therapist back first: the tap adds only its check-in.
        if cmd.checked_in and not x.checked_in and x.signed_at is None:
            return [new_event(cmd, "exit.checked_in", x.id, at, checked_in=True)]
        return []
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
