"""Each kind of record checked twice over: a fast path that only says whether it is valid and,
when it is not, a full check that reports every problem. Both build the record the same way."""

from collections.abc import Callable
from typing import Any, Final

from stepout.domain.instants import Instant
from stepout.domain.validation.fields import (
    _CLIENT_INFORMED,
    _CODE_MSG,
    _CONCERN_KEYS,
    _EMS,
    _EMS_MSG,
    _EMS_OR_NULL,
    _EXIT_KEYS,
    _INFORMED_MSG,
    _MISSING,
    _MODALITIES,
    _MODALITY_MSG,
    _NO_ITEMS,
    _REASON_MSG,
    _REASONS,
    _REASONS_OR_NULL,
    _SAFEGUARD_MSG,
    _SAFEGUARDS,
    _SESSION_KEYS,
    _SOURCE_MSG,
    _SOURCES,
    _TEXT_OR_NULL,
    _choice,
    _fast_instant,
    _ident,
    _instant,
    _memo,
    _optional_choice,
    _optional_text,
    _strings_among,
    _unknown_fields,
)
from stepout.domain.validation.types import Checked, Errors, LineError
from stepout.domain.vocabulary import (
    KNOWN_CODES,
)

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
