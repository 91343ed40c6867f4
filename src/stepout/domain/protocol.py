"""The live protocol of a session, as a pure state machine.

`decide(command, facts, at=..., new_id=...)` takes a command, the records it concerns (loaded
by the service layer into `Facts`) and the instant of the decision, and returns the events to
append, or raises `ProtocolError` with a stable `code` and a plain message that names no client
and echoes no free text. Nothing here reads a clock, makes an id or touches a store.

Decisions where DESIGN.md leaves room:
- Tenancy: a record of another practice is "not-found", exactly like an unknown id.
- One open exit per therapist: while a therapist has an exit with no return in any session of
  the practice still in progress, another exit is refused ("therapist-already-out").
- Ending a session with an exit still open is allowed. The exit keeps `returned_at = None`,
  which the rules and billing read as lasting to the session's end; it can no longer be
  returned ("session-not-in-progress": amend `returned_at` with a note if the therapist did
  come back), but it can still be documented and signed.
- Informing the client: `before_leaving` may be recorded while the exit has not returned (the
  tap may follow the words); after the return that is a claim about the past, made by
  amendment with a note ("exit-not-open"). `after_return` needs the return
  ("exit-not-returned"). Once the information is recorded with words, other information is
  refused ("client-already-informed": amend instead).
- A signed exit is closed to the live workflow ("exit-already-signed"); later changes are
  amendments, as clinical addenda are.
- Double taps are harmless no-ops (no event): a safeguard already confirmed, the same EMS
  decision without a note, the same attendant, a second check-in, the same information, the
  same classification, an amendment whose values are already recorded. Returning, ending,
  signing and acknowledging twice are refused: each records a moment.
- Amendments change interchange fields, never `id`, `kind` or the owning reference (a
  session's `practice`, an exit's or concern's `session`), and need a non-empty note. The
  amended record must pass the importer's checks (`validation.validate_record`: choices,
  instants with an offset, a return not before the leaving, an end after the start), and an
  acknowledgement may not precede its concern ("invalid-value"). Amendments may not do what
  only the live commands do ("session-in-progress"): a session is amended once it has ended
  (its record is incomplete until then: the importer requires an `end`), and an exit of a
  session in progress is never reopened.
- The clock must not run backwards across a record ("clock-behind"): no leaving before the
  session's start, no return before the leaving, no end before the last recorded instant
  (and none at the start itself: the importer requires an end after the start), no signature
  before the return, no acknowledgement before the concern.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

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
    ExitCommand,
    InformClient,
    RaiseConcern,
    Return,
    SignExit,
    StartSession,
)
from stepout.domain.events import Event, Record, evolve
from stepout.domain.instants import Instant, format_instant, parse_instant
from stepout.domain.interchange import (
    CONCERN_FIELDS,
    EXIT_FIELDS,
    SESSION_FIELDS,
    concern_to_dict,
    exit_to_dict,
    session_to_dict,
)
from stepout.domain.practice import Practice
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.validation import validate_record
from stepout.domain.vocabulary import (
    CLIENT_INFORMED,
    EMS_DECISIONS,
    KNOWN_CODES,
    MODALITIES,
    REASONS,
    SAFEGUARDS,
)

CLASSIFY_NOTE: Final = "Classified a sensor-detected exit."


class ProtocolError(Exception):
    """A command the protocol refuses: `code` is stable, `message` is for the therapist."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Facts:
    """What a decision reads, loaded by the service layer (None: not found)."""

    practice: Practice | None = None
    session: Session | None = None  # the session named, or the one owning the exit/concern
    exit: Exit | None = None
    concern: Concern | None = None
    open_exit: Exit | None = None  # the session's therapist's open exit, if any (declare)
    exits: tuple[Exit, ...] = ()  # the session's exits (end session)


@dataclass(frozen=True, slots=True)
class Decision:
    """The record a command is about (`entity`, `subject`) and the events it appends."""

    entity: str
    subject: str
    events: tuple[Event, ...] = ()


def decide(command: Command, facts: Facts, *, at: Instant, new_id: str | None = None) -> Decision:
    """The events `command` appends, given `facts`, at instant `at`. `new_id` names the record
    a StartSession, DeclareExit or RaiseConcern creates."""
    match command:
        case StartSession():
            return _start_session(command, facts, at, _needs_id(new_id))
        case DeclareExit():
            return _declare_exit(command, facts, at, _needs_id(new_id))
        case EndSession():
            return _end_session(command, facts, at)
        case RaiseConcern():
            return _raise_concern(command, facts, at, _needs_id(new_id))
        case AcknowledgeConcern():
            return _acknowledge(command, facts, at)
        case Amend():
            return _amend(command, facts, at)
        case _:
            return _on_exit(command, facts, at)


def _needs_id(new_id: str | None) -> str:
    if not new_id:
        raise ValueError("a command that creates a record needs new_id")
    return new_id


def _not_found(what: str) -> ProtocolError:
    return ProtocolError("not-found", f"No such {what} in this practice.")


def _event(cmd: Command, kind: str, subject: str, at: Instant, **data: Any) -> Event:
    return Event(kind, cmd.practice, subject, at, data, cmd.actor)


def _ts(instant: Instant) -> str:
    return format_instant(instant)


def _blank(text: str | None) -> bool:
    return not isinstance(text, str) or not text.strip()


def _required(what: str, text: str | None) -> None:
    if _blank(text):
        raise ProtocolError("missing-value", f"The {what} is required.")


_CHOICES: Final = {  # code suffix -> what the therapist reads
    "modality": "That is not a known modality (in person or telehealth).",
    "code": "That is not a CPT code Stepout knows.",
    "reason": "That is not a known reason for stepping out.",
    "client-informed": "Say whether the client was told before leaving or after the return.",
    "safeguard": "That is not a known safeguard.",
    "ems-decision": "Say whether emergency services were called or are not needed.",
}


def _choice(what: str, value: str | None, allowed: Collection[str]) -> None:
    if value not in allowed:
        raise ProtocolError(f"unknown-{what}", _CHOICES[what])


def _not_before(at: Instant, *earlier: Instant | None) -> None:
    if any(t is not None and at < t for t in earlier):
        raise ProtocolError(
            "clock-behind", "The clock reads earlier than a time already recorded; check it."
        )


def _own_session(cmd: Command, facts: Facts) -> Session:
    s = facts.session
    if s is None or s.practice != cmd.practice:
        raise _not_found("session")
    return s


def _own_exit(cmd: Command, facts: Facts) -> tuple[Exit, Session]:
    x, s = facts.exit, facts.session
    if x is None or s is None or x.session != s.id or s.practice != cmd.practice:
        raise _not_found("exit")
    return x, s


def _own_concern(cmd: Command, facts: Facts) -> tuple[Concern, Session]:
    c, s = facts.concern, facts.session
    if c is None or s is None or c.session != s.id or s.practice != cmd.practice:
        raise _not_found("concern")
    return c, s


def _start_session(cmd: StartSession, facts: Facts, at: Instant, new_id: str) -> Decision:
    if facts.practice is None or facts.practice.id != cmd.practice:
        raise ProtocolError("not-found", "No such practice.")
    for what, text in (("therapist", cmd.therapist), ("client", cmd.client), ("room", cmd.room)):
        _required(what, text)
    _choice("modality", cmd.modality, MODALITIES)
    for code in cmd.billed_codes:
        _choice("code", code, KNOWN_CODES)
    started = _event(
        cmd,
        "session.started",
        new_id,
        at,
        practice=cmd.practice,
        therapist=cmd.therapist,
        client=cmd.client,
        room=cmd.room,
        modality=cmd.modality,
        start=_ts(at),
        billed_codes=list(cmd.billed_codes),
    )
    return Decision("session", new_id, (started,))


def _declare_exit(cmd: DeclareExit, facts: Facts, at: Instant, new_id: str) -> Decision:
    s = _own_session(cmd, facts)
    if not s.in_progress:
        raise ProtocolError("session-not-in-progress", "This session is not in progress.")
    if facts.open_exit is not None:
        raise ProtocolError(
            "therapist-already-out",
            "You are already out of a session; record that return before stepping out again.",
        )
    if cmd.reason is not None:
        _choice("reason", cmd.reason, REASONS)
    _choice("client-informed", cmd.client_informed, CLIENT_INFORMED)
    if cmd.client_informed == "after_return":
        raise ProtocolError("exit-not-returned", "The client cannot be told after a return yet.")
    for safeguard in cmd.safeguards:
        _choice("safeguard", safeguard, SAFEGUARDS)
    if cmd.ems is not None:
        _choice("ems-decision", cmd.ems, EMS_DECISIONS)
    minutes = cmd.expected_minutes
    if minutes is not None and (isinstance(minutes, bool) or minutes <= 0):
        raise ProtocolError("invalid-value", "The expected minutes must be a whole number above 0.")
    if cmd.client_attended_by is not None:
        _required("person staying with the client", cmd.client_attended_by)
    _not_before(at, s.start)
    events = [
        _event(
            cmd,
            "exit.declared",
            new_id,
            at,
            session=s.id,
            source="declared",
            reason=cmd.reason,
            reason_note=cmd.reason_note,
            left_at=_ts(at),
            expected_minutes=minutes,
        )
    ]
    if cmd.client_informed != "not_informed" or cmd.explanation is not None:
        events.append(
            _event(
                cmd,
                "exit.client_informed",
                new_id,
                at,
                client_informed=cmd.client_informed,
                explanation=cmd.explanation,
            )
        )
    for safeguard in sorted(set(cmd.safeguards)):
        events.append(_event(cmd, "exit.safeguard_confirmed", new_id, at, safeguard=safeguard))
    if cmd.client_attended_by is not None:
        events.append(
            _event(
                cmd,
                "exit.attendant_arranged",
                new_id,
                at,
                client_attended_by=cmd.client_attended_by,
            )
        )
    if cmd.ems is not None:
        events.append(_event(cmd, "exit.ems_decided", new_id, at, ems=cmd.ems, note=cmd.ems_note))
    return Decision("exit", new_id, tuple(events))


def _end_session(cmd: EndSession, facts: Facts, at: Instant) -> Decision:
    s = _own_session(cmd, facts)
    if not s.in_progress:
        raise ProtocolError("session-already-ended", "This session has already ended.")
    _not_before(at, s.start + 1, *(x.left_at for x in facts.exits))
    _not_before(at, *(x.returned_at for x in facts.exits))
    return Decision("session", s.id, (_event(cmd, "session.ended", s.id, at, end=_ts(at)),))


def _raise_concern(cmd: RaiseConcern, facts: Facts, at: Instant, new_id: str) -> Decision:
    s = _own_session(cmd, facts)
    _required("concern", cmd.text)
    _not_before(at, s.start)
    raised = _event(
        cmd, "concern.raised", new_id, at, session=s.id, raised_at=_ts(at), text=cmd.text
    )
    return Decision("concern", new_id, (raised,))


def _acknowledge(cmd: AcknowledgeConcern, facts: Facts, at: Instant) -> Decision:
    c, _ = _own_concern(cmd, facts)
    if c.acknowledged_at is not None:
        raise ProtocolError("concern-already-acknowledged", "This concern is already acknowledged.")
    _not_before(at, c.raised_at)
    event = _event(cmd, "concern.acknowledged", c.id, at, acknowledged_at=_ts(at))
    return Decision("concern", c.id, (event,))


def _on_exit(cmd: ExitCommand, facts: Facts, at: Instant) -> Decision:
    x, s = _own_exit(cmd, facts)
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
            _choice("safeguard", cmd.safeguard, SAFEGUARDS)
            if cmd.safeguard in x.safeguards:
                return []
            _unsigned(x)
            return [_event(cmd, "exit.safeguard_confirmed", x.id, at, safeguard=cmd.safeguard)]
        case DecideEms():
            _choice("ems-decision", cmd.ems, EMS_DECISIONS)
            if x.ems == cmd.ems and _blank(cmd.note):
                return []
            _unsigned(x)
            return [_event(cmd, "exit.ems_decided", x.id, at, ems=cmd.ems, note=cmd.note)]
        case ArrangeAttendant():
            _required("person staying with the client", cmd.client_attended_by)
            if x.client_attended_by == cmd.client_attended_by:
                return []
            _unsigned(x)
            who = cmd.client_attended_by
            return [_event(cmd, "exit.attendant_arranged", x.id, at, client_attended_by=who)]
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
            return [_event(cmd, "exit.checked_in", x.id, at, checked_in=True)]
        case SignExit():
            if x.signed_at is not None:
                raise ProtocolError("exit-already-signed", "This exit is already signed.")
            if x.returned_at is None and s.in_progress:
                raise ProtocolError("exit-not-returned", "Sign the exit after returning.")
            _not_before(at, x.left_at, x.returned_at)
            return [_event(cmd, "exit.signed", x.id, at, signed_at=_ts(at))]
        case ClassifyExit():
            return _classify(cmd, x, at)


def _inform(cmd: InformClient, x: Exit, at: Instant) -> list[Event]:
    _choice("client-informed", cmd.client_informed, ("before_leaving", "after_return"))
    if (x.client_informed, x.explanation) == (cmd.client_informed, cmd.explanation):
        return []
    _unsigned(x)
    if x.client_informed != "not_informed" and not _blank(x.explanation):
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
    informed = _event(
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
    _not_before(at, x.left_at)
    events = [_event(cmd, "exit.returned", x.id, at, returned_at=_ts(at))]
    if cmd.checked_in:
        events.append(_event(cmd, "exit.checked_in", x.id, at, checked_in=True))
    return events


def _classify(cmd: ClassifyExit, x: Exit, at: Instant) -> list[Event]:
    if x.source != "sensor":
        raise ProtocolError("not-a-sensor-exit", "Only an exit a sensor detected is classified.")
    _choice("reason", cmd.reason, REASONS)
    if (x.reason, x.reason_note) == (cmd.reason, cmd.reason_note):
        return []
    if x.reason is not None:
        raise ProtocolError(
            "exit-already-classified", "This exit already has a reason; amend it to change it."
        )
    changes = {"reason": cmd.reason, "reason_note": cmd.reason_note}
    return [_event(cmd, "exit.amended", x.id, at, changes=changes, note=CLASSIFY_NOTE)]


def _amend(cmd: Amend, facts: Facts, at: Instant) -> Decision:
    if cmd.kind not in AMENDABLE:
        raise ProtocolError("invalid-value", "Only a session, an exit or a concern can be amended.")
    current: Session | Exit | Concern
    if cmd.kind == "session":
        current = s = _own_session(cmd, facts)
    elif cmd.kind == "exit":
        current, s = _own_exit(cmd, facts)
    else:
        current, s = _own_concern(cmd, facts)
    if current.id != cmd.id:
        raise _not_found(cmd.kind)
    _required("note", cmd.note)
    if not cmd.changes:
        raise ProtocolError("no-changes", "An amendment needs at least one change.")
    if any(name not in AMENDABLE[cmd.kind] for name in cmd.changes):
        raise ProtocolError("field-not-amendable", "That field cannot be amended.")
    if isinstance(current, Session) and current.in_progress:
        raise ProtocolError("session-in-progress", "Amend the session once it has ended.")
    recorded, changes = _checked_changes(current, cmd.kind, cmd.changes)
    delta = {f: v for f, v in changes.items() if recorded.get(f) != v}
    if not delta:
        return Decision(cmd.kind, current.id)
    event = _event(cmd, f"{cmd.kind}.amended", current.id, at, changes=delta, note=cmd.note)
    after = evolve(current, event)
    _amendment_keeps_protocol(current, after, s)
    return Decision(cmd.kind, current.id, (event,))


def _amendment_keeps_protocol(before: Session | Exit | Concern, after: Record, s: Session) -> None:
    """Refuse an amendment that reopens an exit of a session in progress (only the live
    commands open and close exits then) or puts an acknowledgement before its concern."""
    if (
        isinstance(before, Exit)
        and isinstance(after, Exit)
        and s.in_progress
        and before.returned_at is not None
        and after.returned_at is None
    ):
        raise ProtocolError(
            "session-in-progress", "An exit cannot be reopened while its session is in progress."
        )
    if (
        isinstance(after, Concern)
        and after.acknowledged_at is not None
        and after.acknowledged_at < after.raised_at
    ):
        raise ProtocolError(
            "invalid-value", "The amendment is not valid: acknowledged_at: is before raised_at."
        )


# -- The values an amendment may set: interchange fields, checked as the importer checks them.

AMENDABLE: Final[dict[str, frozenset[str]]] = {
    "session": frozenset(SESSION_FIELDS) - {"id", "practice"},
    "exit": frozenset(EXIT_FIELDS) - {"id", "session"},
    "concern": frozenset(CONCERN_FIELDS) - {"id", "session"},
}
_TIMESTAMPS: Final = frozenset(
    {"start", "end", "left_at", "returned_at", "signed_at", "raised_at", "acknowledged_at"}
)


def _checked_changes(
    current: Session | Exit | Concern, kind: str, changes: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the values recorded now, the changes checked and normalised): the record with the
    changes must pass `validate_record`, as an imported line must."""
    recorded = _recorded_values(current)
    merged, errors = validate_record({**recorded, **changes}, 0)
    if merged is None or errors:
        first = errors[0]
        message = f"The amendment is not valid: {first.field}: {first.message}."
        raise ProtocolError("invalid-value", message)
    checked = {name: _normal(name, merged[name]) for name in changes}
    return recorded, checked


def _normal(name: str, value: Any) -> Any:
    if name in _TIMESTAMPS and value is not None:
        return format_instant(parse_instant(value))
    return value


def _recorded_values(current: Session | Exit | Concern) -> dict[str, Any]:
    if isinstance(current, Session):
        return session_to_dict(current)
    if isinstance(current, Exit):
        return exit_to_dict(current)
    return concern_to_dict(current)
