"""The ledger's event catalogue and how each event changes a record.

Every change to Stepout's records is one of these events, appended to the hash-chained
ledger. The tables the queries read (sessions, exits, concerns) are projections: the result of
folding `evolve` over the ledger in order. Timestamps inside `data` are ISO 8601 text, as in
the interchange format, so that the ledger reads on its own.
"""

from dataclasses import replace
from typing import Any, Final, NamedTuple

from stepout.domain.instants import Instant, parse_instant
from stepout.domain.interchange import (
    concern_from_dict,
    concern_to_dict,
    exit_from_dict,
    exit_to_dict,
    session_from_dict,
    session_to_dict,
)
from stepout.domain.practice import Practice
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.schedule import (
    APPOINTMENT_KINDS,
    Appointment,
    AppointmentError,
    evolve_appointment,
)

Record = Session | Exit | Concern | Practice | Appointment


class Event(NamedTuple):
    """Immutable; a named tuple because an import builds a million of them."""

    kind: str  # one of KINDS
    practice: str
    subject: str  # the id of the session, exit or concern (or practice) it is about
    at: Instant  # when it happened in the practice (not when it was written)
    data: dict[str, Any]
    actor: str | None = None  # who caused it: a user id, "import", "sensor", ...

    @property
    def entity(self) -> str:
        return self.kind.split(".", 1)[0]


# kind -> what `data` holds
KINDS: Final[dict[str, str]] = {
    "practice.created": "name, timezone",
    "session.recorded": "the whole session record (import)",
    "session.started": "practice, therapist, client, room, modality, start, billed_codes",
    "session.ended": "end",
    "session.amended": "changes {field: value}, note",
    "exit.recorded": "the whole exit record (import)",
    "exit.declared": "session, source, reason, reason_note, left_at, expected_minutes",
    "exit.client_informed": "client_informed, explanation",
    "exit.safeguard_confirmed": "safeguard",
    "exit.ems_decided": "ems, note",
    "exit.attendant_arranged": "client_attended_by",
    "exit.returned": "returned_at",
    "exit.checked_in": "checked_in",
    "exit.signed": "signed_at",
    "exit.amended": "changes {field: value}, note",
    "concern.recorded": "the whole concern record (import)",
    "concern.raised": "session, raised_at, text",
    "concern.acknowledged": "acknowledged_at",
    "concern.amended": "changes {field: value}, note",
    # A finding's review (subject: the finding's key; `stepout.domain.reviews`): each repeats
    # the finding's rule, session, exit and therapist. Not records: `evolve_review` folds them.
    "finding.acknowledged": "rule, session, exit, therapist, note",
    "finding.assigned": "rule, session, exit, therapist, assignee",
    "finding.resolved": "rule, session, exit, therapist, note",
    # An appointment (subject: its id; `stepout.domain.schedule`). Not in CREATES: the
    # appointments have their own projection (`adapters.db.appointments`).
    "appointment.scheduled": "practice, therapist, client, room, modality, start, end, "
    "billed_codes",
    "appointment.rescheduled": "therapist, client, room, modality, start, end, billed_codes",
    "appointment.cancelled": "(nothing)",
}

CREATES: Final = frozenset(
    {
        "practice.created",
        "session.recorded",
        "session.started",
        "exit.recorded",
        "exit.declared",
        "concern.recorded",
        "concern.raised",
    }
)


class EvolveError(ValueError):
    """An event that cannot apply to the record it names (a corrupt or reordered ledger)."""


def _ts(value: str | None) -> Instant | None:
    return None if value is None else parse_instant(value)


def evolve(current: Record | None, event: Event) -> Record:
    """The record after `event`. `current` is None exactly for the events in CREATES."""
    kind, d = event.kind, event.data
    if kind not in KINDS:
        raise EvolveError(f"{kind}: not an event kind of the ledger")
    if kind.startswith("finding."):
        raise EvolveError(f"{kind}: a finding's review is folded by domain.reviews, not here")
    if kind in APPOINTMENT_KINDS:
        if current is not None and not isinstance(current, Appointment):
            raise EvolveError(f"{kind} does not apply to {type(current).__name__}")
        try:
            return evolve_appointment(current, kind, event.subject, d)
        except AppointmentError as e:
            raise EvolveError(str(e)) from None
    if kind in CREATES:
        if current is not None:
            raise EvolveError(f"{kind}: {event.subject} already exists")
        return _create(event)
    if current is None:
        raise EvolveError(f"{kind}: {event.subject} does not exist")
    if kind.endswith(".amended") and not isinstance(current, Practice | Appointment):
        return _amend(current, d["changes"])
    if isinstance(current, Session) and kind == "session.ended":
        return replace(current, end=parse_instant(d["end"]))
    if isinstance(current, Exit):
        return _evolve_exit(current, kind, d)
    if isinstance(current, Concern) and kind == "concern.acknowledged":
        return replace(current, acknowledged_at=_ts(d["acknowledged_at"]))
    raise EvolveError(f"{kind} does not apply to {type(current).__name__} {event.subject}")


def _create(event: Event) -> Record:
    d = {**event.data, "id": event.subject}
    if event.entity == "practice":
        return Practice(id=event.subject, name=d["name"], timezone=d.get("timezone") or "UTC")
    if event.entity == "session":
        if event.kind == "session.started":
            d.setdefault("end", None)
        return session_from_dict(d)
    if event.entity == "exit":
        return exit_from_dict(d)
    return concern_from_dict(d)


def _evolve_exit(x: Exit, kind: str, d: dict[str, Any]) -> Exit:
    if kind == "exit.client_informed":
        return replace(x, client_informed=d["client_informed"], explanation=d["explanation"])
    if kind == "exit.safeguard_confirmed":
        return replace(x, safeguards=x.safeguards | {d["safeguard"]})
    if kind == "exit.ems_decided":
        return replace(x, ems=d["ems"])
    if kind == "exit.attendant_arranged":
        return replace(x, client_attended_by=d["client_attended_by"])
    if kind == "exit.returned":
        return replace(x, returned_at=_ts(d["returned_at"]))
    if kind == "exit.checked_in":
        return replace(x, checked_in=bool(d["checked_in"]))
    if kind == "exit.signed":
        return replace(x, signed_at=_ts(d["signed_at"]))
    raise EvolveError(f"{kind} does not apply to an exit")


def _amend(current: Session | Exit | Concern, changes: dict[str, Any]) -> Record:
    if isinstance(current, Session):
        return session_from_dict({**session_to_dict(current), **changes})
    if isinstance(current, Exit):
        merged = {**exit_to_dict(current), **changes}
        merged.setdefault("expected_minutes", current.expected_minutes)
        return exit_from_dict(merged)
    return concern_from_dict({**concern_to_dict(current), **changes})
