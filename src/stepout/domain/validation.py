"""Check one record of the JSON Lines interchange on its own, and normalise it.

The rules are DESIGN.md's "Records interchange": required fields, no unknown fields, types and
choices, timestamps ISO 8601 with an offset, a session's `end` after its `start`, an exit's
`returned_at` not before its `left_at`, billed codes Stepout knows. Omitted optional fields take
their defaults. Checks across records (duplicate ids, references, existing records) belong to
`stepout.services.importing`.

Messages name the field and what is wrong, never the value: free text is health data.

Written by hand for speed (an import checks millions of records): precomputed sets, one
function per kind, and a bounded memo of parsed timestamps (sessions start on the hour, so most
timestamps repeat).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from stepout.domain.instants import Instant, InstantError, from_datetime, parse_instant
from stepout.domain.interchange import CONCERN_FIELDS, EXIT_FIELDS, SESSION_FIELDS
from stepout.domain.vocabulary import (
    CLIENT_INFORMED,
    EMS_DECISIONS,
    KNOWN_CODES,
    MODALITIES,
    REASONS,
    SAFEGUARDS,
    SOURCES,
)

KINDS: Final = ("session", "exit", "concern")


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass(slots=True)
class Checked:
    """A record that passed every check of its own, with what the import service needs."""

    kind: str
    id: str
    data: dict[str, Any]  # the normalised record without `kind` and `id`: an event's data
    ref: str  # a session's practice; the session of an exit or a concern
    at: Instant  # the record's main instant: start, left_at or raised_at
    end: Instant | None  # a session's end (None for exits and concerns)
    line: int


Errors = list[LineError]

_MISSING: Final[Any] = object()
_SESSION_KEYS: Final = frozenset(("kind", *SESSION_FIELDS))
_EXIT_KEYS: Final = frozenset(("kind", *EXIT_FIELDS))
_CONCERN_KEYS: Final = frozenset(("kind", *CONCERN_FIELDS))
_MODALITIES: Final = frozenset(MODALITIES)
_SOURCES: Final = frozenset(SOURCES)
_REASONS: Final = frozenset(REASONS)
_CLIENT_INFORMED: Final = frozenset(CLIENT_INFORMED)
_SAFEGUARDS: Final = frozenset(SAFEGUARDS)
_EMS: Final = frozenset(EMS_DECISIONS)
_REASONS_OR_NULL: Final = frozenset((*REASONS, None))
_EMS_OR_NULL: Final = frozenset((*EMS_DECISIONS, None))
_TEXT_OR_NULL: Final = frozenset((str, type(None)))
_NO_ITEMS: Final[list[str]] = []  # never changed: stands for an omitted list
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,40}")

# Instants a timestamp may denote: those `format_instant` can write back (years 1 to 9999, UTC).
MIN_INSTANT: Final = from_datetime(datetime.min.replace(tzinfo=UTC))
MAX_INSTANT: Final = from_datetime(datetime.max.replace(tzinfo=UTC))

_MEMO_SIZE: Final = 1 << 16
_memo: dict[Any, Instant] = {}  # timestamp text -> instant


def _one_of(choices: tuple[str, ...], *, nullable: bool = False) -> str:
    listed = ", ".join(choices)
    return f"must be one of {listed}" + (" or null" if nullable else "")


def _parse(text: str) -> Instant:
    """`parse_instant`, memoised, and limited to instants that can be written back."""
    found = _memo.get(text)
    if found is not None:
        return found
    instant = parse_instant(text)
    if not MIN_INSTANT <= instant <= MAX_INSTANT:
        raise InstantError("is out of range")
    if len(_memo) >= _MEMO_SIZE:
        _memo.clear()
    _memo[text] = instant
    return instant


def _instant(o: dict[str, Any], name: str, line: int, errs: Errors, required: bool) -> Any:
    """The instant of timestamp field `name`; None if it is null, omitted or wrong (then an
    error is recorded, unless it is an optional field left null or omitted)."""
    text = o.get(name, _MISSING)
    if type(text) is str:
        try:
            return _parse(text)
        except InstantError as e:
            errs.append(LineError(line, name, str(e)))
            return None
    if text is _MISSING and required:
        errs.append(LineError(line, name, "is required"))
    elif required:
        errs.append(LineError(line, name, "must be an ISO 8601 timestamp with an offset"))
    elif text is not None and text is not _MISSING:
        errs.append(LineError(line, name, "must be an ISO 8601 timestamp with an offset or null"))
    return None


def _ident(o: dict[str, Any], name: str, line: int, errs: Errors) -> Any:
    """A required non-empty string (an id or a reference)."""
    value = o.get(name, _MISSING)
    if type(value) is str and value:
        return value
    if value is _MISSING:
        errs.append(LineError(line, name, "is required"))
    else:
        errs.append(LineError(line, name, "must be a non-empty string"))
    return None


def _choice(
    o: dict[str, Any], name: str, choices: frozenset[str], message: str, line: int, errs: Errors
) -> Any:
    """A required string among `choices`."""
    value = o.get(name, _MISSING)
    if type(value) is str and value in choices:
        return value
    errs.append(LineError(line, name, "is required" if value is _MISSING else message))
    return None


def _optional_choice(
    o: dict[str, Any], name: str, choices: frozenset[str], message: str, line: int, errs: Errors
) -> Any:
    """An optional string among `choices`, or null (the default)."""
    value = o.get(name)
    if value is None or (type(value) is str and value in choices):
        return value
    errs.append(LineError(line, name, message))
    return None


def _optional_text(o: dict[str, Any], name: str, line: int, errs: Errors) -> Any:
    value = o.get(name)
    if value is None or type(value) is str:
        return value
    errs.append(LineError(line, name, "must be a string or null"))
    return None


def _strings_among(
    o: dict[str, Any], name: str, allowed: frozenset[str], message: str, line: int, errs: Errors
) -> list[str]:
    """An optional list of strings, each in `allowed` (the default is the empty list)."""
    value = o.get(name, _MISSING)
    if value is _MISSING:
        return []
    if type(value) is list:
        try:
            if allowed.issuperset(value):
                return value
        except TypeError:  # an unhashable item, such as a list
            pass
        for index, item in enumerate(value, 1):
            if type(item) is not str or item not in allowed:
                errs.append(LineError(line, name, f"item {index} {message}"))
                break
    else:
        errs.append(LineError(line, name, "must be a list"))
    return []


def _unknown_fields(
    o: dict[str, Any], known: frozenset[str], kind: str, line: int, errs: Errors
) -> None:
    """One error per unknown field, named unless its name could be free text."""
    for key in o:
        if key not in known:
            shown = key if _SAFE_NAME.fullmatch(key) else "?"
            errs.append(LineError(line, shown, f"is not {kind} field"))


_MODALITY_MSG: Final = _one_of(MODALITIES)
_SOURCE_MSG: Final = _one_of(SOURCES)
_REASON_MSG: Final = _one_of(REASONS, nullable=True)
_INFORMED_MSG: Final = _one_of(CLIENT_INFORMED)
_EMS_MSG: Final = _one_of(EMS_DECISIONS, nullable=True)
_SAFEGUARD_MSG: Final = _one_of(SAFEGUARDS)
_CODE_MSG: Final = "is not a known CPT code"
_KIND_MSG: Final = _one_of(KINDS)


def _fast_instant(text: object) -> Instant | None:
    """The instant of a well-formed timestamp, else None (the full check says what is wrong)."""
    if type(text) is not str:
        return None
    found = _memo.get(text)
    if found is not None:
        return found
    try:
        return _parse(text)
    except InstantError:
        return None


# Each kind is checked twice over: a fast path that only says whether the record is valid, and,
# when it is not, a full check that reports every problem. Both build the record the same way.


def _session(o: dict[str, Any], line: int, start: Instant, end: Instant) -> Checked:
    data = {
        "practice": o["practice"],
        "therapist": o["therapist"],
        "client": o["client"],
        "room": o["room"],
        "modality": o["modality"],
        "start": o["start"],
        "end": o["end"],
        "billed_codes": o.get("billed_codes") or [],
    }
    return Checked("session", o["id"], data, o["practice"], start, end, line)


def _check_session(o: dict[str, Any], line: int, errs: Errors) -> Checked | None:
    g = o.get
    rid, practice, therapist, client, room = (
        g("id"),
        g("practice"),
        g("therapist"),
        g("client"),
        g("room"),
    )
    modality, start_text, end_text = g("modality"), g("start"), g("end")
    codes = g("billed_codes", _NO_ITEMS)
    try:
        # With kind and the 8 required fields present (checked below), no field is unknown
        # exactly when the record has no other keys.
        if (
            len(o) == (9 if codes is _NO_ITEMS else 10)
            and type(rid) is str
            and type(practice) is str
            and type(therapist) is str
            and type(client) is str
            and type(room) is str
            and rid
            and practice
            and therapist
            and client
            and room
            and modality in _MODALITIES
            and type(codes) is list
            and KNOWN_CODES.issuperset(codes)
        ):
            start, end = _memo.get(start_text), _memo.get(end_text)
            if start is None:
                start = _fast_instant(start_text)
            if end is None:
                end = _fast_instant(end_text)
            if start is not None and end is not None and end > start:
                data = {
                    "practice": practice,
                    "therapist": therapist,
                    "client": client,
                    "room": room,
                    "modality": modality,
                    "start": start_text,
                    "end": end_text,
                    "billed_codes": [] if codes is _NO_ITEMS else codes,
                }
                return Checked("session", rid, data, practice, start, end, line)
    except TypeError:  # an unhashable value where a choice was expected
        pass
    return _check_session_fully(o, line, errs)


def _check_session_fully(o: dict[str, Any], line: int, errs: Errors) -> Checked | None:
    before = len(errs)
    if not _SESSION_KEYS.issuperset(o):
        _unknown_fields(o, _SESSION_KEYS, "a session", line, errs)
    for name in ("id", "practice", "therapist", "client", "room"):
        _ident(o, name, line, errs)
    _choice(o, "modality", _MODALITIES, _MODALITY_MSG, line, errs)
    start = _instant(o, "start", line, errs, True)
    end = _instant(o, "end", line, errs, True)
    _strings_among(o, "billed_codes", KNOWN_CODES, _CODE_MSG, line, errs)
    if start is not None and end is not None and end <= start:
        errs.append(LineError(line, "end", "is not after start"))
    return None if len(errs) > before else _session(o, line, start, end)


def _exit(o: dict[str, Any], line: int, left_at: Instant) -> Checked:
    g = o.get
    safeguards = g("safeguards") or []
    if len(safeguards) > 1:
        safeguards = sorted(set(safeguards))
    data = {
        "session": o["session"],
        "source": o["source"],
        "reason": g("reason"),
        "reason_note": g("reason_note"),
        "left_at": o["left_at"],
        "returned_at": g("returned_at"),
        "client_informed": g("client_informed", "not_informed"),
        "explanation": g("explanation"),
        "safeguards": safeguards,
        "client_attended_by": g("client_attended_by"),
        "ems": g("ems"),
        "checked_in": g("checked_in", False),
        "signed_at": g("signed_at"),
    }
    return Checked("exit", o["id"], data, o["session"], left_at, None, line)


def _check_exit(o: dict[str, Any], line: int, errs: Errors) -> Checked | None:
    g = o.get
    rid, session, returned, signed = g("id"), g("session"), g("returned_at"), g("signed_at")
    safeguards = g("safeguards", _NO_ITEMS)
    try:
        if (
            _EXIT_KEYS.issuperset(o)
            and type(rid) is str
            and type(session) is str
            and rid
            and session
            and g("source") in _SOURCES
            and g("reason") in _REASONS_OR_NULL
            and g("client_informed", "not_informed") in _CLIENT_INFORMED
            and g("ems") in _EMS_OR_NULL
            and type(g("reason_note")) in _TEXT_OR_NULL
            and type(g("explanation")) in _TEXT_OR_NULL
            and type(g("client_attended_by")) in _TEXT_OR_NULL
            and type(g("checked_in", False)) is bool
            and type(safeguards) is list
            and _SAFEGUARDS.issuperset(safeguards)
        ):
            left_at = _fast_instant(g("left_at"))
            returned_at = None if returned is None else _fast_instant(returned)
            if (
                left_at is not None
                and (returned is None or (returned_at is not None and returned_at >= left_at))
                and (signed is None or _fast_instant(signed) is not None)
            ):
                return _exit(o, line, left_at)
    except TypeError:  # an unhashable value where a choice was expected
        pass
    return _check_exit_fully(o, line, errs)


def _check_exit_fully(o: dict[str, Any], line: int, errs: Errors) -> Checked | None:
    before = len(errs)
    if not _EXIT_KEYS.issuperset(o):
        _unknown_fields(o, _EXIT_KEYS, "an exit", line, errs)
    _ident(o, "id", line, errs)
    _ident(o, "session", line, errs)
    _choice(o, "source", _SOURCES, _SOURCE_MSG, line, errs)
    _optional_choice(o, "reason", _REASONS, _REASON_MSG, line, errs)
    _optional_text(o, "reason_note", line, errs)
    left_at = _instant(o, "left_at", line, errs, True)
    returned_at = _instant(o, "returned_at", line, errs, False)
    informed = o.get("client_informed", "not_informed")
    if type(informed) is not str or informed not in _CLIENT_INFORMED:
        errs.append(LineError(line, "client_informed", _INFORMED_MSG))
    _optional_text(o, "explanation", line, errs)
    _strings_among(o, "safeguards", _SAFEGUARDS, _SAFEGUARD_MSG, line, errs)
    _optional_text(o, "client_attended_by", line, errs)
    _optional_choice(o, "ems", _EMS, _EMS_MSG, line, errs)
    if type(o.get("checked_in", False)) is not bool:
        errs.append(LineError(line, "checked_in", "must be true or false"))
    _instant(o, "signed_at", line, errs, False)
    if left_at is not None and returned_at is not None and returned_at < left_at:
        errs.append(LineError(line, "returned_at", "is before left_at"))
    return None if len(errs) > before else _exit(o, line, left_at)


def _concern(o: dict[str, Any], line: int, raised_at: Instant) -> Checked:
    data = {
        "session": o["session"],
        "raised_at": o["raised_at"],
        "text": o["text"],
        "acknowledged_at": o.get("acknowledged_at"),
    }
    return Checked("concern", o["id"], data, o["session"], raised_at, None, line)


def _check_concern(o: dict[str, Any], line: int, errs: Errors) -> Checked | None:
    g = o.get
    rid, session, acknowledged = g("id"), g("session"), g("acknowledged_at")
    if (
        _CONCERN_KEYS.issuperset(o)
        and type(rid) is str
        and type(session) is str
        and rid
        and session
        and type(g("text")) is str
    ):
        raised_at = _fast_instant(g("raised_at"))
        if raised_at is not None and (
            acknowledged is None or _fast_instant(acknowledged) is not None
        ):
            return _concern(o, line, raised_at)
    return _check_concern_fully(o, line, errs)


def _check_concern_fully(o: dict[str, Any], line: int, errs: Errors) -> Checked | None:
    before = len(errs)
    if not _CONCERN_KEYS.issuperset(o):
        _unknown_fields(o, _CONCERN_KEYS, "a concern", line, errs)
    _ident(o, "id", line, errs)
    _ident(o, "session", line, errs)
    raised_at = _instant(o, "raised_at", line, errs, True)
    text = o.get("text", _MISSING)
    if type(text) is not str:
        message = "is required" if text is _MISSING else "must be a string"
        errs.append(LineError(line, "text", message))
    _instant(o, "acknowledged_at", line, errs, False)
    return None if len(errs) > before else _concern(o, line, raised_at)


_CHECKERS: Final[dict[str, Callable[[dict[str, Any], int, Errors], Checked | None]]] = {
    "session": _check_session,
    "exit": _check_exit,
    "concern": _check_concern,
}


def check_record(obj: Any, line: int, errs: Errors) -> Checked | None:
    """Check one parsed JSON value. On success the checked record; otherwise None, with every
    problem of the record appended to `errs`."""
    try:
        checker = _CHECKERS[obj["kind"]]
    except (TypeError, KeyError):  # not an object, no kind, or not a kind
        if type(obj) is not dict:
            errs.append(LineError(line, "json", "must be a JSON object"))
        else:
            message = _KIND_MSG if "kind" in obj else "is required"
            errs.append(LineError(line, "kind", message))
        return None
    return checker(obj, line, errs)


def validate_record(obj: object, line: int) -> tuple[dict[str, Any] | None, list[LineError]]:
    """One parsed JSON value -> (the normalised record, every optional field filled with its
    default; or None) and the problems found, each naming `line`."""
    errs: Errors = []
    checked = check_record(obj, line, errs)
    if checked is None:
        return None, errs
    return {"kind": checked.kind, "id": checked.id, **checked.data}, errs
