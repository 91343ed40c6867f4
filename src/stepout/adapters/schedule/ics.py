"""Schedules as iCalendar (RFC 5545), parsed with `icalendar` (docs/schedules.md).

Each VEVENT is one appointment:
- id: `X-STEPOUT-ID` if present, else the UID; a UID that breaks Stepout's id rules becomes
  `ics-` and the first 32 hex digits of its SHA-256 (the same UID always gives the same id).
- `X-STEPOUT-THERAPIST`, `X-STEPOUT-CLIENT`, `X-STEPOUT-ROOM`, `X-STEPOUT-MODALITY` and the
  optional `X-STEPOUT-CODES` (codes separated by commas, spaces or `;`) name the rest.
- DTSTART and DTEND (or DURATION): with a TZID, in that zone; with `Z`, UTC; floating (neither),
  in the practice's zone. A local time that a daylight-saving change skips or repeats is read
  as RFC 5545 says: a skipped time with the offset before the gap, a repeated time as its
  first occurrence.
- STATUS:CANCELLED (or the calendar's METHOD:CANCEL) cancels.
- Recurring events (RRULE, RDATE, RECURRENCE-ID) and whole-day events are refused: export the
  single occurrences.
SUMMARY, DESCRIPTION, LOCATION and attendees' names are never read.

Places are the physical line of the property at fault (or of the event's BEGIN:VEVENT),
counted from 1; icalendar does not report lines, so a light scan of the raw lines finds them.
"""

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

from stepout.domain.instants import format_instant, from_datetime
from stepout.domain.schedule import ID_RULE, Raw, ScheduleError

PROPERTIES: Final = {
    "therapist": "X-STEPOUT-THERAPIST",
    "client": "X-STEPOUT-CLIENT",
    "room": "X-STEPOUT-ROOM",
    "modality": "X-STEPOUT-MODALITY",
}
RECURRING: Final = ("RRULE", "RDATE", "RECURRENCE-ID")
NAMES: Final = {
    **PROPERTIES,
    "id": "UID",
    "start": "DTSTART",
    "end": "DTEND",
    "billed_codes": "X-STEPOUT-CODES",
}


class IcsFileError(ValueError):
    """The file as a whole is not an iCalendar file."""

    def __init__(self, errors: list[ScheduleError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def appointment_id(uid: str) -> str:
    """The Stepout id of a calendar UID."""
    if ID_RULE.fullmatch(uid):
        return uid
    return "ics-" + hashlib.sha256(uid.encode()).hexdigest()[:32]


@dataclass
class _Block:
    """One top-level VEVENT as scanned: where it begins, the line of the first occurrence of
    each of its own properties, and those content lines (name, parameters, value)."""

    begin: int
    lines: dict[str, int] = field(default_factory=dict)
    props: list[tuple[str, str, str]] = field(default_factory=list)


def _logical(text: str) -> Iterator[tuple[int, str]]:
    """Content lines unfolded (RFC 5545 3.1), each with the number of its first line."""
    number, current = 0, None
    for n, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if line[:1] in (" ", "\t") and current is not None:
            current += line[1:]
            continue
        if current is not None:
            yield number, current
        number, current = n, line
    if current:
        yield number, current


def _scan(text: str) -> tuple[list[_Block], str, bool]:
    """The top-level VEVENTs, the calendar's METHOD, and whether the file looks like one
    plain VCALENDAR (if not, icalendar reads it and says what is wrong)."""
    blocks: list[_Block] = []
    method = ""
    depth = 0  # components open: 1 inside VCALENDAR, 2 inside a VEVENT, ...
    current: _Block | None = None
    calendars = 0
    for number, line in _logical(text):
        if not line.strip():
            continue
        head, _, value = line.partition(":")
        name, _, params = head.partition(";")
        name = name.strip().upper()
        if name == "BEGIN":
            depth += 1
            kind = value.strip().upper()
            if depth == 1:
                calendars += 1
                if kind != "VCALENDAR":
                    return blocks, method, False
            elif depth == 2 and kind == "VEVENT":
                current = _Block(number)
                blocks.append(current)
        elif name == "END":
            depth -= 1
            if depth == 1:
                current = None
        elif depth == 1 and name == "METHOD":
            method = value.strip().upper()
        elif depth == 2 and current is not None:
            current.lines.setdefault(name, number)
            current.props.append((name, params, value))
    return blocks, method, calendars == 1 and depth == 0


class _Time:
    __slots__ = ("dt",)

    def __init__(self, moment: datetime) -> None:
        self.dt = moment


class _Simple:
    """The properties of an event that the fast path read, offered to `_raw` as icalendar's
    Event offers them (`get`, `in`, `errors`)."""

    def __init__(self, props: dict[str, Any]) -> None:
        self._props = props
        self.errors: list[tuple[str, str]] = []

    def get(self, name: str, default: Any = None) -> Any:
        return self._props.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._props

    def __getitem__(self, name: str) -> Any:
        return self._props[name]


_TIME: Final = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)")
_TEXT_PROPS: Final = frozenset(
    {"UID", "X-STEPOUT-ID", "X-STEPOUT-CODES", "STATUS", *PROPERTIES.values()}
)
_TIME_PROPS: Final = frozenset({"DTSTART", "DTEND"})
_OTHER_READ: Final = frozenset({"DURATION", *RECURRING})
READ: Final = _TEXT_PROPS | _TIME_PROPS | _OTHER_READ


def _simple(block: _Block) -> _Simple | None:
    """The event read without icalendar, when every property Stepout reads is plain: text
    without escapes or parameters, times as `YYYYMMDDTHHMMSS[Z]` with at most a TZID that
    names an IANA zone. Otherwise None (icalendar reads it). A test pins that both agree."""
    props: dict[str, Any] = {}
    for name, params, value in block.props:
        if name in _OTHER_READ or name in props:
            return None
        if name in _TEXT_PROPS:
            if params or "\\" in value:
                return None
            props[name] = value
        elif name in _TIME_PROPS:
            moment = _plain_time(params, value)
            if moment is None:
                return None
            props[name] = _Time(moment)
    return _Simple(props)


@lru_cache(maxsize=1 << 16)  # a schedule repeats the same times
def _plain_time(params: str, value: str) -> datetime | None:
    found = _TIME.fullmatch(value)
    if found is None or '"' in params:
        return None
    zone: tzinfo | None = UTC if found.group(7) else None
    for param in filter(None, params.split(";")):
        key, _, setting = param.partition("=")
        key = key.upper()
        if key == "TZID" and zone is None:
            try:
                zone = ZoneInfo(setting)
            except (ValueError, ZoneInfoNotFoundError):
                return None
        elif key != "VALUE" or setting.upper() != "DATE-TIME":
            return None
    y, mo, d, h, mi, sec = (int(found.group(i)) for i in range(1, 7))
    try:
        return datetime(y, mo, d, h, mi, sec, tzinfo=zone)
    except ValueError:
        return None


def read_ics(data: bytes, practice: str, zone: str, *, fast: bool = True) -> Iterator[Raw]:
    """The appointments of an iCalendar file for `practice`, floating times read in `zone`.
    Raises `IcsFileError` when the file is not one calendar. With `fast` (the default), plain
    events are read without icalendar (`_simple`), many times quicker."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise IcsFileError([ScheduleError(f"line {line}", "ics", "is not UTF-8 text")]) from None
    blocks, method, plain = _scan(text)
    events: list[Any] = [_simple(b) if fast and plain else None for b in blocks]
    if not plain or any(e is None for e in events):
        try:
            calendar = icalendar.Calendar.from_ical(text)
        except ValueError:
            message = "is not one iCalendar VCALENDAR"
            raise IcsFileError([ScheduleError("line 1", "ics", message)]) from None
        parsed = [c for c in calendar.subcomponents if c.name == "VEVENT"]
        if len(parsed) != len(blocks):  # the scan misread the file: icalendar alone, no lines
            blocks = [_Block(0) for _ in parsed]
            events = [None] * len(parsed)
        events = [e if e is not None else parsed[i] for i, e in enumerate(events)]
        method = str(calendar.get("METHOD", "")).upper()
    local = ZoneInfo(zone)
    for index, (block, event) in enumerate(zip(blocks, events, strict=True)):
        yield _raw(event, index, block.begin, block.lines, practice, local, method == "CANCEL")


def _raw(
    event: Any,
    index: int,
    begin: int,
    lines: dict[str, int],
    practice: str,
    local: tzinfo,
    cancel_all: bool,
) -> Raw:
    place = f"line {begin}" if begin else f"event {index + 1}"

    def at(prop: str) -> str:
        return f"line {lines[prop]}" if prop in lines else place

    errors: list[ScheduleError] = []
    # Only the properties Stepout reads: a broken DTSTAMP or SUMMARY does not matter here.
    broken = {name.upper() for name, _ in event.errors} & READ
    for name in sorted(broken):
        errors.append(ScheduleError(at(name), name, "cannot be read"))
    for name in RECURRING:
        if name in event:
            message = "recurring events are not imported: export single occurrences"
            errors.append(ScheduleError(at(name), name, message))
    given = event.get("X-STEPOUT-ID")
    uid = event.get("UID")
    rid = str(given) if given is not None else (None if uid is None else appointment_id(str(uid)))
    fields: dict[str, Any] = {"id": rid, "practice": practice}
    places = {"id": at("X-STEPOUT-ID" if given is not None else "UID")}
    for name, prop in PROPERTIES.items():
        value = event.get(prop)
        fields[name] = None if value is None else str(value).strip()
        places[name] = at(prop)
    codes = event.get("X-STEPOUT-CODES")
    fields["billed_codes"] = [] if codes is None else _codes(str(codes))
    places["billed_codes"] = at("X-STEPOUT-CODES")
    start = None
    if "DTSTART" not in broken:
        start = _instant(event, "DTSTART", local, at, errors)
    places["start"] = at("DTSTART")
    fields["start"] = None if start is None else format_instant(from_datetime(start))
    end_prop = "DTEND" if "DTEND" in event or "DURATION" not in event else "DURATION"
    places["end"] = at(end_prop)
    end = None
    if end_prop == "DTEND" and "DTEND" not in broken:
        end = _instant(event, "DTEND", local, at, errors)
    elif end_prop == "DURATION" and start is not None and "DURATION" not in broken:
        duration = event["DURATION"].dt
        if isinstance(duration, timedelta):
            end = start + duration
    fields["end"] = None if end is None else format_instant(from_datetime(end))
    status = str(event.get("STATUS", "")).upper()
    return Raw(
        place,
        (begin or index, 0),
        fields,
        cancel_all or status == "CANCELLED",
        places,
        tuple(errors),
        {**NAMES, "end": end_prop, "id": "X-STEPOUT-ID" if given is not None else "UID"},
    )


def _codes(text: str) -> list[str]:
    return [c for c in text.replace(",", " ").replace(";", " ").split() if c]


def _instant(
    event: Any, prop: str, local: tzinfo, at: Any, errors: list[ScheduleError]
) -> datetime | None:
    value = event.get(prop)
    if value is None:
        return None  # the common check says it is required
    moment = value.dt
    if not isinstance(moment, datetime):
        if isinstance(moment, date):
            errors.append(ScheduleError(at(prop), prop, "must be a date and time, not a day"))
        else:
            errors.append(ScheduleError(at(prop), prop, "must be a date and time"))
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local)  # floating: the practice's wall clock
    return moment.astimezone(UTC)
