"""Records <-> the plain dicts of the JSON Lines interchange format (DESIGN.md).

These conversions trust their input: `stepout.domain.validation` checks a dict first.
"""

from typing import Any, cast

from stepout.domain.instants import format_instant, parse_instant
from stepout.domain.records import Concern, Exit, Session

JsonDict = dict[str, Any]

SESSION_FIELDS = (
    "id",
    "practice",
    "therapist",
    "client",
    "room",
    "modality",
    "start",
    "end",
    "billed_codes",
)
EXIT_FIELDS = (
    "id",
    "session",
    "source",
    "reason",
    "reason_note",
    "left_at",
    "returned_at",
    "client_informed",
    "explanation",
    "safeguards",
    "client_attended_by",
    "ems",
    "checked_in",
    "signed_at",
)
CONCERN_FIELDS = ("id", "session", "raised_at", "text", "acknowledged_at")

# What an omitted optional field means.
EXIT_DEFAULTS: JsonDict = {
    "reason": None,
    "reason_note": None,
    "returned_at": None,
    "client_informed": "not_informed",
    "explanation": None,
    "safeguards": [],
    "client_attended_by": None,
    "ems": None,
    "checked_in": False,
    "signed_at": None,
}
CONCERN_DEFAULTS: JsonDict = {"acknowledged_at": None}
SESSION_DEFAULTS: JsonDict = {"billed_codes": []}


def _opt_instant(text: str | None) -> int | None:
    return None if text is None else parse_instant(text)


def _opt_text(instant: int | None) -> str | None:
    return None if instant is None else format_instant(instant)


def session_from_dict(d: JsonDict) -> Session:
    return Session(
        id=d["id"],
        practice=d["practice"],
        therapist=d["therapist"],
        client=d["client"],
        room=d["room"],
        modality=d["modality"],
        start=parse_instant(d["start"]),
        end=_opt_instant(d.get("end")),
        billed_codes=tuple(d.get("billed_codes") or ()),
    )


def session_to_dict(s: Session) -> JsonDict:
    return {
        "kind": "session",
        "id": s.id,
        "practice": s.practice,
        "therapist": s.therapist,
        "client": s.client,
        "room": s.room,
        "modality": s.modality,
        "start": format_instant(s.start),
        "end": _opt_text(s.end),
        "billed_codes": list(s.billed_codes),
    }


def exit_from_dict(d: JsonDict) -> Exit:
    return Exit(
        id=d["id"],
        session=d["session"],
        source=d["source"],
        left_at=parse_instant(d["left_at"]),
        reason=d.get("reason"),
        reason_note=d.get("reason_note"),
        returned_at=_opt_instant(d.get("returned_at")),
        client_informed=d.get("client_informed") or "not_informed",
        explanation=d.get("explanation"),
        safeguards=frozenset(d.get("safeguards") or ()),
        client_attended_by=d.get("client_attended_by"),
        ems=d.get("ems"),
        checked_in=bool(d.get("checked_in", False)),
        signed_at=_opt_instant(d.get("signed_at")),
        expected_minutes=cast(int | None, d.get("expected_minutes")),
    )


def exit_to_dict(x: Exit) -> JsonDict:
    return {
        "kind": "exit",
        "id": x.id,
        "session": x.session,
        "source": x.source,
        "reason": x.reason,
        "reason_note": x.reason_note,
        "left_at": format_instant(x.left_at),
        "returned_at": _opt_text(x.returned_at),
        "client_informed": x.client_informed,
        "explanation": x.explanation,
        "safeguards": sorted(x.safeguards),
        "client_attended_by": x.client_attended_by,
        "ems": x.ems,
        "checked_in": x.checked_in,
        "signed_at": _opt_text(x.signed_at),
    }


def concern_from_dict(d: JsonDict) -> Concern:
    return Concern(
        id=d["id"],
        session=d["session"],
        raised_at=parse_instant(d["raised_at"]),
        text=d["text"],
        acknowledged_at=_opt_instant(d.get("acknowledged_at")),
    )


def concern_to_dict(c: Concern) -> JsonDict:
    return {
        "kind": "concern",
        "id": c.id,
        "session": c.session,
        "raised_at": format_instant(c.raised_at),
        "text": c.text,
        "acknowledged_at": _opt_text(c.acknowledged_at),
    }
