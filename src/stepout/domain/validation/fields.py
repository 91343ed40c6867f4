"""Checks of single fields, and the sets and messages they use."""

import re
from datetime import UTC, datetime
from typing import Any, Final

from stepout.domain.instants import Instant, InstantError, from_datetime, parse_instant
from stepout.domain.interchange import CONCERN_FIELDS, EXIT_FIELDS, SESSION_FIELDS
from stepout.domain.validation.types import KINDS, Errors, LineError
from stepout.domain.vocabulary import (
    CLIENT_INFORMED,
    EMS_DECISIONS,
    MODALITIES,
    REASONS,
    SAFEGUARDS,
    SOURCES,
)

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
