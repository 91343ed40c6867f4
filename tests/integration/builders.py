"""Events for storage tests: synthetic ids and text only."""

from typing import Any

from sqlalchemy import Connection, text

from stepout.domain.events import Event
from stepout.domain.instants import format_instant, parse_instant

T0 = parse_instant("2026-03-02T14:00:00+00:00")
MINUTE = 60_000_000


def at(minutes: float) -> int:
    return T0 + int(minutes * MINUTE)


def iso(instant: int) -> str:
    return format_instant(instant)


def practice(pid: str = "p1", timezone: str = "UTC") -> Event:
    return Event(
        "practice.created", pid, pid, T0, {"name": f"Practice {pid}", "timezone": timezone}
    )


def session(
    sid: str,
    start: int = T0,
    minutes: int | None = 50,
    *,
    practice: str = "p1",
    therapist: str = "t-001",
    codes: tuple[str, ...] = ("90834",),
    room: str = "r1",
) -> Event:
    """A `session.recorded` event; `minutes=None` for a session still in progress."""
    data: dict[str, Any] = {
        "practice": practice,
        "therapist": therapist,
        "client": "client-0001",
        "room": room,
        "modality": "in_person",
        "start": iso(start),
        "end": None if minutes is None else iso(start + minutes * MINUTE),
        "billed_codes": list(codes),
    }
    return Event("session.recorded", practice, sid, start, data, "import")


def exit_(
    xid: str, sid: str, left: int, back: int | None = None, *, practice: str = "p1", **more: Any
) -> Event:
    data: dict[str, Any] = {
        "session": sid,
        "source": "declared",
        "reason": "technical",
        "left_at": iso(left),
        "returned_at": None if back is None else iso(back),
        "client_informed": "before_leaving",
        "explanation": "Stepping out to fix the video link.",
        "safeguards": ["door_closed", "records_secured", "screen_locked"],
        **more,
    }
    return Event("exit.recorded", practice, xid, left, data, "import")


def concern(kid: str, sid: str, raised: int, *, practice: str = "p1") -> Event:
    data = {"session": sid, "raised_at": iso(raised), "text": "The session was interrupted."}
    return Event("concern.recorded", practice, kid, raised, data, "import")


def workflow(sid: str, xid: str, start: int, *, therapist: str = "t-001") -> list[Event]:
    """A live session: started, an exit declared and completed step by step, ended, signed."""

    def ev(kind: str, subject: str, minutes: int, data: dict[str, Any]) -> Event:
        return Event(kind, "p1", subject, start + minutes * MINUTE, data, therapist)

    started = {
        "practice": "p1",
        "therapist": therapist,
        "client": "client-0002",
        "room": "r2",
        "modality": "telehealth",
        "start": iso(start),
        "billed_codes": ["90837"],
    }
    declared = {
        "session": sid,
        "source": "declared",
        "reason": "health_emergency",
        "reason_note": None,
        "left_at": iso(start + 5 * MINUTE),
        "expected_minutes": 10,
    }
    informed = {"client_informed": "before_leaving", "explanation": "I will be right back."}
    return [
        ev("session.started", sid, 0, started),
        ev("exit.declared", xid, 5, declared),
        ev("exit.client_informed", xid, 5, informed),
        ev("exit.safeguard_confirmed", xid, 5, {"safeguard": "door_closed"}),
        ev("exit.attendant_arranged", xid, 6, {"client_attended_by": "staff-01"}),
        ev("exit.ems_decided", xid, 6, {"ems": "not_needed", "note": None}),
        ev("exit.returned", xid, 12, {"returned_at": iso(start + 12 * MINUTE)}),
        ev("exit.checked_in", xid, 13, {"checked_in": True}),
        ev("session.ended", sid, 55, {"end": iso(start + 55 * MINUTE)}),
        ev("exit.signed", xid, 70, {"signed_at": iso(start + 70 * MINUTE)}),
    ]


def snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection row, in key order: for comparing two states exactly."""
    keys = {"practices": "id", "sessions": "pk", "exits": "pk", "concerns": "pk"}
    out = {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY {k}"))]
           for t, k in keys.items()}  # fmt: skip
    out["amendments"] = [
        tuple(r) for r in conn.execute(text("SELECT * FROM amendments ORDER BY seq"))
    ]
    return out


def count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
