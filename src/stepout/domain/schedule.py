"""Appointments: the sessions a schedule plans before they start (docs/schedules.md).

An appointment is planned by `appointment.scheduled`, changed by `appointment.rescheduled`
(the whole new plan; it also reinstates a cancelled appointment) and called off by
`appointment.cancelled`. It names no free text: ids, a modality, planned instants and codes.
A session started from an appointment takes the appointment's id, so the appointment "has
started" exactly when a session with its id exists; that is read from the sessions, not
recorded here.

`check_planned` checks one appointment of a schedule file on its own, whatever the format it
came from; `effect_of` decides what importing it does, given what is stored.
"""

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final, Literal

from stepout.domain.instants import Instant, InstantError, format_instant, parse_instant
from stepout.domain.vocabulary import KNOWN_CODES, MODALITIES, Modality

SCHEDULED: Final = "appointment.scheduled"
RESCHEDULED: Final = "appointment.rescheduled"
CANCELLED: Final = "appointment.cancelled"
APPOINTMENT_KINDS: Final = frozenset({SCHEDULED, RESCHEDULED, CANCELLED})

# An appointment id as it may appear in a URL path segment and an audit target: a letter or
# digit, then up to 127 letters, digits and `._:@+-`.
ID_RULE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
ID_MESSAGE: Final = (
    "must be 1 to 128 letters, digits and . _ : @ + - (starting with a letter or a digit)"
)

Status = Literal["scheduled", "cancelled"]

# A schedule names the same few hundred instants over and over: parse and format each once.
_parse: Final = lru_cache(maxsize=1 << 16)(parse_instant)
_text: Final = lru_cache(maxsize=1 << 16)(format_instant)


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    practice: str
    therapist: str
    client: str  # pseudonymous id
    room: str
    modality: Modality
    start: Instant
    end: Instant
    billed_codes: tuple[str, ...] = ()
    status: Status = "scheduled"

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    def same_plan(self, other: "Appointment") -> bool:
        """The same therapist, client, room, modality, instants and codes."""
        return plan_data(self) == plan_data(other)


def plan_data(a: Appointment) -> dict[str, Any]:
    """The plan as an event's data (instants as ISO 8601 text, codes as a list)."""
    return {
        "therapist": a.therapist,
        "client": a.client,
        "room": a.room,
        "modality": a.modality,
        "start": _text(a.start),
        "end": _text(a.end),
        "billed_codes": list(a.billed_codes),
    }


def _planned(base: dict[str, Any]) -> dict[str, Any]:
    return {
        "therapist": base["therapist"],
        "client": base["client"],
        "room": base["room"],
        "modality": base["modality"],
        "start": _parse(base["start"]),
        "end": _parse(base["end"]),
        "billed_codes": tuple(base.get("billed_codes") or ()),
    }


class AppointmentError(ValueError):
    """An appointment event that does not apply (a corrupt or reordered ledger)."""


def evolve_appointment(
    current: Appointment | None, kind: str, subject: str, data: Any
) -> Appointment:
    """The appointment after one of APPOINTMENT_KINDS."""
    if kind == SCHEDULED:
        if current is not None:
            raise AppointmentError(f"{kind}: {subject} already exists")
        return Appointment(id=subject, practice=data["practice"], **_planned(data))
    if current is None:
        raise AppointmentError(f"{kind}: {subject} does not exist")
    if kind == RESCHEDULED:
        return replace(current, status="scheduled", **_planned(data))
    if kind == CANCELLED:
        return replace(current, status="cancelled")
    raise AppointmentError(f"{kind} is not an appointment event")


# What one file's entry says, and what importing it does.


@dataclass(frozen=True, slots=True)
class ScheduleError:
    """One problem of a schedule file: where (`line 12`, `entry[3]`), which field, what."""

    place: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.place}: {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class Raw:
    """One appointment as a format's reader found it, before the common checks.

    `fields` holds text (or None when absent): id, practice, therapist, client, room,
    modality, start, end (ISO 8601 with an offset), and `billed_codes` a list of text.
    `cancelled` is the file's word that the appointment is called off. `places` names where
    each field was read, when that is more precise than `place` (an .ics property's line)."""

    place: str
    order: tuple[int, int]  # sorts the errors as the file reads
    fields: dict[str, Any]
    cancelled: bool = False
    places: dict[str, str] | None = None
    errors: tuple[ScheduleError, ...] = ()  # what the reader itself found wrong
    names: dict[str, str] | None = None  # the format's name of a field, when not the same


@dataclass(frozen=True, slots=True)
class Planned:
    """An entry that passed its own checks."""

    place: str
    order: tuple[int, int]
    appointment: Appointment
    cancelled: bool
    places: dict[str, str] | None = None  # as `Raw`'s
    names: dict[str, str] | None = None

    def where(self, field: str) -> tuple[str, str]:
        """The place and the format's name of one of the appointment's fields."""
        return (self.places or {}).get(field, self.place), (self.names or {}).get(field, field)


_MODALITIES: Final = frozenset(MODALITIES)
_REQUIRED: Final = ("id", "practice", "therapist", "client", "room")


def check_planned(raw: Raw) -> tuple[Planned | None, list[ScheduleError]]:
    """One entry's own checks: ids present and well formed, a known modality, instants with
    an offset, an end after the start, known codes. Messages never quote a value."""
    planned = _quick(raw)
    if planned is not None:
        return planned, []
    return _check_fully(raw)


def _quick(raw: Raw) -> Planned | None:
    """The common case, checked fast: a well-formed entry as a Planned; anything else None
    (`_check_fully` then says what is wrong). Both build the same appointment."""
    f = raw.fields
    if raw.errors or not f:
        return None
    g = f.get
    rid, practice, therapist, client, room = (
        g("id"),
        g("practice"),
        g("therapist"),
        g("client"),
        g("room"),
    )
    modality, start_text, end_text = g("modality"), g("start"), g("end")
    codes = g("billed_codes") or []
    if not (
        type(rid) is str
        and type(practice) is str
        and type(therapist) is str
        and type(client) is str
        and type(room) is str
        and type(start_text) is str
        and type(end_text) is str
        and practice.strip()
        and therapist.strip()
        and client.strip()
        and room.strip()
        and modality in _MODALITIES
        and KNOWN_CODES.issuperset(codes)
        and ID_RULE.fullmatch(rid)
    ):
        return None
    try:
        start, end = _parse(start_text), _parse(end_text)
    except InstantError:
        return None
    if end <= start:
        return None
    appointment = Appointment(
        rid, practice, therapist.strip(), client.strip(), room.strip(), modality, start, end,
        tuple(codes),
    )  # fmt: skip
    return Planned(raw.place, raw.order, appointment, raw.cancelled, raw.places, raw.names)


def _check_fully(raw: Raw) -> tuple[Planned | None, list[ScheduleError]]:
    errors = list(raw.errors)
    if not raw.fields:  # the reader could not read the entry at all, and said why
        return None, errors
    f = raw.fields
    flagged = {e.field for e in raw.errors}  # fields the reader found wrong already

    def error(field: str, message: str) -> None:
        where = (raw.places or {}).get(field, raw.place)
        name = (raw.names or {}).get(field, field)
        if name not in flagged:
            errors.append(ScheduleError(where, name, message))

    for name in _REQUIRED:
        value = f.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            error(name, "is required")
        elif not isinstance(value, str):
            error(name, "must be text")
    rid = f.get("id")
    if isinstance(rid, str) and rid.strip() and not ID_RULE.fullmatch(rid):
        error("id", ID_MESSAGE)
    modality: Any = f.get("modality")
    if modality is None or modality == "":
        error("modality", "is required")
    elif modality not in _MODALITIES:
        error("modality", "must be one of " + ", ".join(MODALITIES))
    instants: dict[str, Instant] = {}
    for name in ("start", "end"):
        text = f.get(name)
        if text is None or text == "":
            error(name, "is required")
            continue
        try:
            instants[name] = _parse(text)
        except InstantError:
            error(name, "must be an ISO 8601 time with an offset")
    if "start" in instants and "end" in instants and instants["end"] <= instants["start"]:
        error("end", "is not after start")
    codes = f.get("billed_codes") or []
    for index, code in enumerate(codes, 1):
        if code not in KNOWN_CODES:
            error("billed_codes", f"item {index} is not a known CPT code")
            break
    if errors:
        return None, errors
    appointment = Appointment(
        id=f["id"],
        practice=f["practice"],
        therapist=f["therapist"].strip(),
        client=f["client"].strip(),
        room=f["room"].strip(),
        modality=modality,
        start=instants["start"],
        end=instants["end"],
        billed_codes=tuple(codes),
    )
    return Planned(raw.place, raw.order, appointment, raw.cancelled, raw.places, raw.names), []


# What importing one checked entry does, given what is stored.

Effect = Literal["schedule", "reschedule", "cancel", "unchanged", "skip", "refuse"]


def effect_of(
    entry: Planned, stored: Appointment | None, started: bool
) -> tuple[Effect, str | None]:
    """What importing `entry` does, and for "refuse" what is wrong with its id.

    - New: scheduled; new and already cancelled: skipped (nothing to call off).
    - Stored with the same plan and status: unchanged (re-importing a file is a no-op).
    - Stored with another plan: rescheduled (a cancelled one is reinstated); cancelled in the
      file: cancelled.
    - An appointment that has started (a session with its id exists) is never rescheduled
      or cancelled: the session is the record now (amend it instead).
    - Another practice's appointment under the same id is refused without saying so."""
    new = entry.appointment
    if stored is None:
        if started:
            return "refuse", "is already the id of a session"
        return ("skip" if entry.cancelled else "schedule"), None
    if stored.practice != new.practice:
        return "refuse", "is already in use"
    if entry.cancelled:
        if stored.cancelled:
            return "unchanged", None
        if started:
            return "refuse", "has started; a started appointment cannot be cancelled"
        return "cancel", None
    if stored.same_plan(new) and not stored.cancelled:
        return "unchanged", None
    if started:
        return "refuse", "has started; a started appointment cannot be rescheduled"
    return "reschedule", None
