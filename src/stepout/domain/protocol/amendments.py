"""Corrections as amendments: which fields may change, and what must still hold."""

from collections.abc import Mapping
from typing import Any, Final

from stepout.domain.commands import (
    Amend,
)
from stepout.domain.events import Record, evolve
from stepout.domain.instants import Instant, format_instant, parse_instant
from stepout.domain.interchange import (
    CONCERN_FIELDS,
    EXIT_FIELDS,
    SESSION_FIELDS,
    concern_to_dict,
    exit_to_dict,
    session_to_dict,
)
from stepout.domain.protocol.common import (
    Decision,
    Facts,
    ProtocolError,
    new_event,
    not_found,
    own_concern,
    own_exit,
    own_session,
    required,
)
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.validation import validate_record


def amend(cmd: Amend, facts: Facts, at: Instant) -> Decision:
    if cmd.kind not in AMENDABLE:
        raise ProtocolError("invalid-value", "Only a session, an exit or a concern can be amended.")
    current: Session | Exit | Concern
    if cmd.kind == "session":
        current = s = own_session(cmd, facts)
    elif cmd.kind == "exit":
        current, s = own_exit(cmd, facts)
    else:
        current, s = own_concern(cmd, facts)
    if current.id != cmd.id:
        raise not_found(cmd.kind)
    required("note", cmd.note)
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
    event = new_event(cmd, f"{cmd.kind}.amended", current.id, at, changes=delta, note=cmd.note)
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
