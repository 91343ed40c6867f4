"""Projection rows, from records and (for `*.recorded` events) straight from event data.

`*_row` build a row from a record. `*_from_data` build the same row from a `*.recorded`
event's data, read as `evolve` reads it (`stepout.domain.interchange.*_from_dict`), without
the record in between: the import's hot path. Exits and concerns take their session's ref
(pk, practice, therapist), which the projection knows.
"""

from datetime import UTC, datetime
from typing import Any, Final

import orjson

from stepout.adapters.db.rows import codes_text, safeguards_text
from stepout.domain.instants import InstantError
from stepout.domain.records import Concern, Exit, Session

SESSION_COLUMNS: Final = (
    "pk", "id", "practice", "therapist", "client", "room", "modality", "start_us", "end_us",
    "billed_codes",
)  # fmt: skip
EXIT_COLUMNS: Final = (
    "pk", "id", "session_pk", "practice", "therapist", "source", "reason", "reason_note",
    "left_us", "returned_us", "client_informed", "explanation", "safeguards",
    "client_attended_by", "ems", "checked_in", "signed_us", "expected_minutes",
)  # fmt: skip
CONCERN_COLUMNS: Final = (
    "pk", "id", "session_pk", "practice", "raised_us", "text", "acknowledged_us",
)  # fmt: skip
PRACTICE_COLUMNS: Final = ("id", "name", "timezone")

# The event kinds the shortcut handles, and the entity each creates.
SHORTCUTS: Final = {
    "session.recorded": "session",
    "exit.recorded": "exit",
    "concern.recorded": "concern",
}

SessionRef = tuple[int, str, str]  # pk, practice, therapist
Row = tuple[Any, ...]
Data = dict[str, Any]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_fromisoformat: Final = datetime.fromisoformat
_dumps: Final = orjson.dumps  # as `codes_text`: a list and its tuple dump alike
_MEMO_SIZE: Final = 1 << 16
_memo: dict[str, int] = {}  # timestamp text -> instant (sessions start on the hour: repeats)


def session_row(pk: int, s: Session) -> Row:
    return (
        pk, s.id, s.practice, s.therapist, s.client, s.room, s.modality, s.start, s.end,
        codes_text(s.billed_codes),
    )  # fmt: skip


def exit_row(pk: int, x: Exit, ref: SessionRef) -> Row:
    return (
        pk, x.id, ref[0], ref[1], ref[2], x.source, x.reason, x.reason_note, x.left_at,
        x.returned_at, x.client_informed, x.explanation, safeguards_text(x.safeguards),
        x.client_attended_by, x.ems, x.checked_in, x.signed_at, x.expected_minutes,
    )  # fmt: skip


def concern_row(pk: int, c: Concern, ref: SessionRef) -> Row:
    return (pk, c.id, ref[0], ref[1], c.raised_at, c.text, c.acknowledged_at)


def instant(text: str) -> int:
    """`stepout.domain.instants.parse_instant`, inlined for the hot path and memoised (same
    results, same errors; a test compares them)."""
    if type(text) is not str:
        return _parse(text)
    found = _memo.get(text)
    if found is not None:
        return found
    found = _parse(text)
    if len(_memo) >= _MEMO_SIZE:
        _memo.clear()
    _memo[text] = found
    return found


def _parse(text: Any) -> int:
    try:
        moment = _fromisoformat(text)
    except (TypeError, ValueError):
        raise InstantError("not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise InstantError("timestamp has no UTC offset")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def session_from_data(pk: int, subject: str, d: Data) -> Row:
    get, memo = d.get, _memo
    start_text, end_text, codes = d["start"], get("end"), get("billed_codes")
    start = memo.get(start_text) if type(start_text) is str else None
    if start is None:
        start = instant(start_text)
    end = memo.get(end_text) if type(end_text) is str else None
    if end is None and end_text is not None:
        end = instant(end_text)
    return (
        pk, subject, d["practice"], d["therapist"], d["client"], d["room"], d["modality"],
        start, end,
        _dumps(codes).decode() if type(codes) is list else codes_text(tuple(codes or ())),
    )  # fmt: skip


def exit_from_data(pk: int, subject: str, d: Data, ref: SessionRef) -> Row:
    get = d.get
    returned, signed = get("returned_at"), get("signed_at")
    return (
        pk, subject, ref[0], ref[1], ref[2], d["source"], get("reason"), get("reason_note"),
        instant(d["left_at"]), None if returned is None else instant(returned),
        get("client_informed") or "not_informed", get("explanation"),
        safeguards_text(frozenset(get("safeguards") or ())), get("client_attended_by"),
        get("ems"), bool(get("checked_in", False)), None if signed is None else instant(signed),
        get("expected_minutes"),
    )  # fmt: skip


def concern_from_data(pk: int, subject: str, d: Data, ref: SessionRef) -> Row:
    acknowledged = d.get("acknowledged_at")
    return (
        pk, subject, ref[0], ref[1], instant(d["raised_at"]), d["text"],
        None if acknowledged is None else instant(acknowledged),
    )  # fmt: skip
