"""The dashboard's rollup (`stepout.adapters.db.rollup`) against the direct computation from
the base tables (`DirectDashboard`, the queries the dashboard ran before the rollup), on both
engines: random sessions and exits in three time zones (one with a half-hour DST shift) over
two DST changes, random filters, and the same after live events, amendments (a session's
start, end, therapist, room or billed codes; an exit's reason, leaving or return time or
session), a second import and `stepout rebuild`. `rollup_mismatches` (for `stepout verify`) finds a
rollup changed behind the projection's back."""

import io
import random
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, text

from stepout.adapters.db import Database
from stepout.adapters.db.dashboard import DirectDashboard, SqlDashboard
from stepout.adapters.db.rollup import Days, rollup_mismatches
from stepout.domain.events import Event
from stepout.domain.instants import day_bounds, format_instant, parse_instant
from stepout.services.dashboard import REASONS, STATUSES, DashboardFilter, ExitRateThreshold
from stepout.services.importing import import_records

ZONES = {"pa": "America/New_York", "pb": "Australia/Lord_Howe", "pc": "UTC"}
FIRST, LAST = date(2026, 9, 20), date(2027, 4, 20)  # both sides of two DST changes
THERAPISTS = ("t1", "t2", "t3", "t4")
ROOMS = ("r1", "r2", "r3")
CODES = (
    [], ["90832"], ["90834"], ["90837"], ["90836"], ["90838"], ["90839"], ["90839", "90840"],
    ["90839", "90840", "90840"], ["90834", "90785"], ["90785"],
)  # fmt: skip
THRESHOLD = ExitRateThreshold(True, 3, 0.2, "test")
MINUTE = 60_000_000
SPAN = (day_bounds(FIRST, "UTC")[0], day_bounds(LAST, "UTC")[1])


def _iso(instant: int) -> str:
    return format_instant(instant)


def _records(rnd: random.Random, practice: str, n: int, prefix: str) -> list[dict[str, Any]]:
    """`n` ended sessions at random minutes, with 0-3 exits each: overlapping, returning after
    the session's end or never."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        sid = f"{prefix}{practice}-s{i}"
        start = rnd.randrange(SPAN[0], SPAN[1] - 200 * MINUTE) // MINUTE * MINUTE
        minutes = rnd.randrange(5, 130)
        end = start + minutes * MINUTE
        out.append(
            {
                "kind": "session",
                "id": sid,
                "practice": practice,
                "therapist": rnd.choice(THERAPISTS),
                "client": "client-0001",
                "room": rnd.choice(ROOMS),
                "modality": "in_person",
                "start": _iso(start),
                "end": _iso(end),
                "billed_codes": rnd.choice(CODES),
            }
        )
        for j in range(rnd.choice((0, 0, 1, 1, 2, 3))):
            reason = rnd.choice((*REASONS[:4], None))
            left = start + rnd.randrange(0, minutes + 1) * MINUTE
            back = None if rnd.random() < 0.15 else left + rnd.randrange(0, 45) * MINUTE
            out.append(
                {
                    "kind": "exit",
                    "id": f"{sid}-x{j}",
                    "session": sid,
                    "source": "sensor" if reason is None else "declared",
                    "reason": reason,
                    "left_at": _iso(left),
                    "returned_at": None if back is None else _iso(back),
                }
            )
    return out


def _import(db: Database, records: list[dict[str, Any]]) -> None:
    with db.uow() as uow:
        import_records(uow, io.BytesIO(b"".join(orjson.dumps(r) + b"\n" for r in records)))


def _seed(db: Database, rnd: random.Random, n: int) -> None:
    with db.uow() as uow:
        uow.ledger.append(
            [
                Event("practice.created", p, p, SPAN[0], {"name": p, "timezone": z})
                for p, z in ZONES.items()
            ]
        )
        uow.commit()
    _import(db, [r for p in ZONES for r in _records(rnd, p, n, "a")])


def _filters(rnd: random.Random, count: int) -> list[DashboardFilter]:
    out = [DashboardFilter(p, FIRST - timedelta(days=2), LAST) for p in ZONES]
    for _ in range(count):
        lo = FIRST + timedelta(days=rnd.randrange(0, (LAST - FIRST).days))
        hi = lo + timedelta(days=rnd.choice((0, 1, 6, 13, 30, 90, 400)))
        out.append(
            DashboardFilter(
                rnd.choice(tuple(ZONES)),
                lo,
                hi,
                therapist=rnd.choice((None, None, *THERAPISTS)),
                room=rnd.choice((None, None, *ROOMS)),
                reason=rnd.choice((None, None, *REASONS)),
                status=rnd.choice((None, None, *STATUSES)),
            )
        )
    return out


def _same_figures(db: Database, rnd: random.Random, count: int = 30) -> None:
    with db.uow(read_only=True) as uow:
        conn = uow.connection
        compared = 0
        for f in _filters(rnd, count):
            rolled = SqlDashboard(conn).dashboard(f, THRESHOLD)
            direct = DirectDashboard(conn).dashboard(f, THRESHOLD)
            assert rolled == direct, f
            compared += bool(direct.totals.sessions)
        assert compared > count // 3  # the filters hit data, not only empty periods
        assert rollup_mismatches(conn) == []


def _rollup(conn: Connection) -> list[list[tuple[Any, ...]]]:
    return [
        [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4"))]
        for table in ("dashboard_days", "dashboard_exits")
    ]


def _ids(conn: Connection, table: str, practice: str) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            text(f"SELECT id FROM {table} WHERE practice = :p ORDER BY id"), {"p": practice}
        )
    ]


def _amendments(db: Database, rnd: random.Random, n: int) -> list[Event]:
    """Random amendments of stored sessions and exits, some moving a session to another local
    day, therapist or room, or an exit to another session."""
    with db.uow(read_only=True) as uow:
        conn = uow.connection
        sessions = {p: _ids(conn, "sessions", p) for p in ZONES}
        exits = {p: _ids(conn, "exits", p) for p in ZONES}
        starts = {
            str(i): int(v) for i, v in conn.execute(text("SELECT id, start_us FROM sessions"))
        }
    events: list[Event] = []
    for _ in range(n):
        p = rnd.choice(tuple(ZONES))
        if rnd.random() < 0.5:
            sid = rnd.choice(sessions[p])
            start = starts[sid]
            change = rnd.choice(("start", "therapist", "room", "codes", "end"))
            if change == "start":
                moved = start + rnd.choice((-1, 1)) * rnd.randrange(1, 72) * 30 * MINUTE
                changes: dict[str, Any] = {
                    "start": _iso(moved),
                    "end": _iso(moved + rnd.randrange(5, 130) * MINUTE),
                }
                starts[sid] = moved
            elif change == "end":
                changes = {"end": _iso(start + rnd.randrange(1, 130) * MINUTE)}
            elif change == "therapist":
                changes = {"therapist": rnd.choice(THERAPISTS)}
            elif change == "room":
                changes = {"room": rnd.choice(ROOMS)}
            else:
                changes = {"billed_codes": rnd.choice(CODES)}
            events.append(Event("session.amended", p, sid, SPAN[1], {"changes": changes}))
        else:
            xid = rnd.choice(exits[p])
            start = starts[xid.rsplit("-x", 1)[0]]
            change = rnd.choice(("reason", "returned_at", "left_at", "session"))
            if change == "session":  # the events allow it, though an amendment command does not
                changes = {"session": rnd.choice(sessions[p])}
            elif change == "reason":
                reason = rnd.choice(REASONS[:4])
                changes = {"reason": reason, "source": "declared"}
            elif change == "returned_at":
                back = start + rnd.randrange(0, 150) * MINUTE
                changes = {"returned_at": None if rnd.random() < 0.2 else _iso(back)}
                changes["left_at"] = _iso(start)
            else:
                changes = {"left_at": _iso(start + rnd.randrange(0, 60) * MINUTE)}
                changes["returned_at"] = None
            events.append(Event("exit.amended", p, xid, SPAN[1], {"changes": changes}))
    return events


def _live(rnd: random.Random, n: int) -> list[Event]:
    """Sessions recorded the live way: started, an exit declared and returned, ended."""
    events: list[Event] = []
    for i in range(n):
        p = rnd.choice(tuple(ZONES))
        sid, xid = f"live-{p}-{i}", f"live-{p}-{i}-x"
        start = rnd.randrange(SPAN[0], SPAN[1] - 200 * MINUTE) // MINUTE * MINUTE
        started = {
            "practice": p, "therapist": rnd.choice(THERAPISTS), "client": "client-0002",
            "room": rnd.choice(ROOMS), "modality": "telehealth", "start": _iso(start),
            "billed_codes": rnd.choice(CODES),
        }  # fmt: skip
        declared = {
            "session": sid, "source": "declared", "reason": rnd.choice(REASONS[:4]),
            "reason_note": None, "left_at": _iso(start + 5 * MINUTE), "expected_minutes": 10,
        }  # fmt: skip
        back = {"returned_at": _iso(start + rnd.randrange(6, 40) * MINUTE)}
        end = {"end": _iso(start + rnd.randrange(20, 90) * MINUTE)}
        events += [
            Event("session.started", p, sid, start, started, "t"),
            Event("exit.declared", p, xid, start, declared, "t"),
            Event("exit.returned", p, xid, start, back, "t"),
            Event("session.ended", p, sid, start, end, "t"),
        ]
    return events


def _append(db: Database, events: list[Event], rnd: random.Random) -> None:
    """One event per append (the live path), or many at once (the bulk path)."""
    while events:
        size = rnd.choice((1, 1, 3, 80))
        with db.uow() as uow:
            for event in events[:size]:
                uow.ledger.append([event]) if size < 80 else None
            if size >= 80:
                uow.ledger.append(events[:size])
            uow.commit()
        events = events[size:]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_rollup_gives_the_direct_figures(db: Database, seed: int) -> None:
    rnd = random.Random(seed)
    _seed(db, rnd, 700)  # more than a chunk of the import: the writer's bulk path
    _same_figures(db, rnd)

    _append(db, _amendments(db, rnd, 150) + _live(rnd, 20), rnd)
    _same_figures(db, rnd)

    _import(db, [r for p in ZONES for r in _records(rnd, p, 150, "b")])  # to days with rows
    _append(db, _amendments(db, rnd, 60), rnd)
    _same_figures(db, rnd)

    with db.engine.connect() as conn:
        live = _rollup(conn)
    assert live[0]
    assert live[1]
    db.rebuild_projections()
    with db.engine.connect() as conn:
        assert _rollup(conn) == live
    _same_figures(db, rnd, 10)


def test_verify_finds_a_rollup_that_disagrees(db: Database) -> None:
    rnd = random.Random(3)
    _seed(db, rnd, 60)
    with db.uow(read_only=True) as uow:
        assert rollup_mismatches(uow.connection) == []
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT set_config('stepout.practice', '*', true)"))
        conn.execute(
            text(
                "UPDATE dashboard_days SET supported = supported + 1 WHERE practice = 'pb'"
                " AND day = (SELECT min(day) FROM dashboard_days WHERE practice = 'pb')"
            )
        )
        conn.execute(text("DELETE FROM dashboard_exits WHERE practice = 'pc'"))
    with db.uow(read_only=True) as uow:
        found = rollup_mismatches(uow.connection)
    assert len(found) == 2
    assert found[0].startswith("dashboard_days: practice pb: 2 rows differ")  # 1 gone, 1 new
    assert found[1].startswith("dashboard_exits: practice pc: ")
    assert db.derived_problems() == found  # what `stepout verify` reports
    db.rebuild_projections()
    with db.uow(read_only=True) as uow:
        assert rollup_mismatches(uow.connection) == []
    assert db.derived_problems() == []


def test_local_days_follow_day_bounds_across_dst() -> None:
    """An instant's day is the one whose `day_bounds` hold it, on both sides of a DST change
    (half an hour on Lord Howe Island) and at the last microsecond of a day."""
    rnd = random.Random(4)
    for zone in ZONES.values():
        days = Days(zone)
        for _ in range(3000):
            instant = rnd.randrange(SPAN[0], SPAN[1])
            if rnd.random() < 0.3:  # on a local midnight, or just before it
                lo = day_bounds(date(1970, 1, 1) + timedelta(days=days.of(instant)), zone)[0]
                instant = lo - rnd.choice((0, 1))
            day = days.of(instant)
            lo, hi = day_bounds(date(1970, 1, 1) + timedelta(days=day), zone)
            assert lo <= instant < hi
    assert (
        Days("UTC").of(parse_instant("2026-11-01T23:59:59.999999+00:00"))
        == (date(2026, 11, 1) - date(1970, 1, 1)).days
    )
