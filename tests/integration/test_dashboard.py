"""The dashboard's figures in SQL (`stepout.adapters.db.dashboard`) on both engines: a small
fixed data set counted by hand, its filters, the tenant wall, and billing status in SQL
against `stepout.domain.billing` on every combination of codes and minutes.

The fixed data set (practice p1 in America/New_York; US summer time ends on Sunday
2026-11-01, so the local offset is -04:00 before and -05:00 after):

session: therapist room, local start, minutes; billed; exits (minutes away); net minutes,
billing status; local week (by its Monday)
- s0: t1 r1, Sun 10-25 22:00, 50; 90834; x0 technical 22:10-22:16 (6); 44, supported; 10-19
  (in UTC it started on Monday 10-26)
- s1: t1 r1, Mon 10-26 10:00, 50; 90834; x1 technical 10:20-10:23 (3); 47, supported; 10-26
- s2: t1 r1, Tue 10-27 10:00, 55; 90837; x2 client_safety 10:10-10:30 (20); 35, unsupported;
  10-26
- s3: t1 r2, Wed 10-28 10:00, 60; 90834; none; 60, undercoded; 10-26
- s4: t2 r2, Sun 11-01 23:00, 50; nothing; x3 sensor, no reason, 23:10, never back (40: to the
  session's end); 10, not_billed; 10-26 (in UTC it started on Monday 11-02)
- s5: t2 r2, Mon 11-02 00:30, 55; 90834; x4 health_emergency 00:40-00:50 (10) and x5 other
  00:45-00:55 (10), overlapping: 15 away; 40, supported; 11-02
- s6: t2 r1, Tue 11-03 09:00, 90; 90839 90840; x6 technical 09:30-09:32 (2); 88, supported;
  11-02
- s7: t1 r1, Wed 11-04 10:00, 30; 90832 90785; none; 30, supported; 11-02
- s9: t1 r1, Fri 11-20 10:00, 50; 90834; x9 technical (5): outside the period

Practice p2 (UTC) has a session of "t1" in "r1" in the same days, with an exit: it never counts
for p1. The period is 2026-10-25 to 2026-11-08 (p1's dates).
"""

import io
import itertools
from collections import Counter
from datetime import date
from typing import Any

import orjson
import pytest

from stepout.adapters.db import Database, tenancy
from stepout.adapters.db.dashboard import SqlDashboard, zone_offsets
from stepout.domain.instants import parse_instant
from stepout.policy.model import load_policy
from stepout.services.dashboard import (
    AbsenceBin,
    AbsenceSummary,
    Dashboard,
    DashboardFilter,
    ExitRateThreshold,
    Totals,
    WeekReasonCount,
    WeekStatusCount,
    build_dashboard,
)
from stepout.services.importing import import_records
from stepout.services.ports import Selection
from stepout.services.reporting import run_billing

PERIOD = (date(2026, 10, 25), date(2026, 11, 8))
OCT19, OCT26, NOV2 = date(2026, 10, 19), date(2026, 10, 26), date(2026, 11, 2)
# Lower than the policy's, so that one therapist crosses it: t1 (3 of 5) does, t2 (3 of 3)
# has too few sessions.
THRESHOLD = ExitRateThreshold(True, 4, 0.5, "test")


def _session(sid: str, practice: str, therapist: str, room: str, start: str, minutes: int,
             codes: list[str]) -> dict[str, Any]:  # fmt: skip
    begin = parse_instant(start)
    end = begin + minutes * 60_000_000
    return {
        "kind": "session", "id": sid, "practice": practice, "therapist": therapist,
        "client": "client-0001", "room": room, "modality": "in_person", "start": start,
        "end": _iso(end, start[-6:]), "billed_codes": codes,
    }  # fmt: skip


def _iso(instant: int, offset: str) -> str:
    from datetime import UTC, datetime, timedelta

    sign = -1 if offset[0] == "-" else 1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
    moment = datetime.fromtimestamp(instant / 1_000_000, UTC) + delta
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + offset


def _exit(xid: str, sid: str, left: str, back: str | None, reason: str | None) -> dict[str, Any]:
    return {
        "kind": "exit", "id": xid, "session": sid,
        "source": "sensor" if reason is None else "declared", "reason": reason,
        "left_at": left, "returned_at": back,
    }  # fmt: skip


FIXED = [
    _session("s0", "p1", "t1", "r1", "2026-10-25T22:00:00-04:00", 50, ["90834"]),
    _exit("x0", "s0", "2026-10-25T22:10:00-04:00", "2026-10-25T22:16:00-04:00", "technical"),
    _session("s1", "p1", "t1", "r1", "2026-10-26T10:00:00-04:00", 50, ["90834"]),
    _exit("x1", "s1", "2026-10-26T10:20:00-04:00", "2026-10-26T10:23:00-04:00", "technical"),
    _session("s2", "p1", "t1", "r1", "2026-10-27T10:00:00-04:00", 55, ["90837"]),
    _exit("x2", "s2", "2026-10-27T10:10:00-04:00", "2026-10-27T10:30:00-04:00", "client_safety"),
    _session("s3", "p1", "t1", "r2", "2026-10-28T10:00:00-04:00", 60, ["90834"]),
    _session("s4", "p1", "t2", "r2", "2026-11-01T23:00:00-05:00", 50, []),
    _exit("x3", "s4", "2026-11-01T23:10:00-05:00", None, None),
    _session("s5", "p1", "t2", "r2", "2026-11-02T00:30:00-05:00", 55, ["90834"]),
    _exit("x4", "s5", "2026-11-02T00:40:00-05:00", "2026-11-02T00:50:00-05:00", "health_emergency"),
    _exit("x5", "s5", "2026-11-02T00:45:00-05:00", "2026-11-02T00:55:00-05:00", "other"),
    _session("s6", "p1", "t2", "r1", "2026-11-03T09:00:00-05:00", 90, ["90839", "90840"]),
    _exit("x6", "s6", "2026-11-03T09:30:00-05:00", "2026-11-03T09:32:00-05:00", "technical"),
    _session("s7", "p1", "t1", "r1", "2026-11-04T10:00:00-05:00", 30, ["90832", "90785"]),
    _session("s9", "p1", "t1", "r1", "2026-11-20T10:00:00-05:00", 50, ["90834"]),
    _exit("x9", "s9", "2026-11-20T10:10:00-05:00", "2026-11-20T10:15:00-05:00", "technical"),
    _session("q1", "p2", "t1", "r1", "2026-10-27T10:00:00+00:00", 50, ["90837"]),
    _exit("y1", "q1", "2026-10-27T10:10:00+00:00", "2026-10-27T10:40:00+00:00", "technical"),
]  # fmt: skip


def _jsonl(records: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _load(db: Database, records: list[dict[str, Any]], zones: dict[str, str]) -> None:
    from stepout.domain.events import Event
    from stepout.domain.instants import now

    with db.uow() as uow:
        events = [
            Event("practice.created", p, p, now(), {"name": p, "timezone": z})
            for p, z in zones.items()
        ]
        uow.ledger.append(events)
        uow.commit()
    with db.uow() as uow:
        import_records(uow, _jsonl(records))


@pytest.fixture
def fixed(db: Database) -> Database:
    _load(db, FIXED, {"p1": "America/New_York", "p2": "UTC"})
    return db


def _dashboard(db: Database, **narrow: Any) -> Dashboard:
    practice = narrow.pop("practice", "p1")
    period = narrow.pop("period", PERIOD)
    with db.uow(read_only=True) as uow:
        return SqlDashboard(uow.connection).dashboard(
            DashboardFilter(practice, *period, **narrow), THRESHOLD
        )


def test_every_figure_matches_the_hand_count(fixed: Database) -> None:
    d = _dashboard(fixed)
    assert d.timezone == "America/New_York"
    # s0-s7: 8 sessions; x0-x6: 7 exits; s0, s1, s2, s4, s5, s6 have one; t1 and t2.
    assert d.totals == Totals(sessions=8, sessions_with_exits=6, exits=7, therapists=2)
    # By the local week of the session's start: s0 (Sunday evening) in the week of 10-19 and
    # s4 (Sunday evening, after the change to winter time) in the week of 10-26, though both
    # started on a Monday in UTC.
    assert d.exits_by_week == (
        WeekReasonCount(OCT19, "technical", 1),  # x0
        WeekReasonCount(OCT26, "technical", 1),  # x1
        WeekReasonCount(OCT26, "client_safety", 1),  # x2
        WeekReasonCount(OCT26, "unclassified", 1),  # x3
        WeekReasonCount(NOV2, "technical", 1),  # x6
        WeekReasonCount(NOV2, "health_emergency", 1),  # x4
        WeekReasonCount(NOV2, "other", 1),  # x5
    )
    # t1: s0, s1, s2, s3, s7; left in s0, s1, s2: 3 of 5 = 60 % > 50 % with >= 4 sessions.
    # t2: s4, s5, s6, left in all three: 100 %, but 3 sessions are fewer than 4.
    [t1, t2] = d.therapists
    assert (t1.therapist, t1.sessions, t1.sessions_with_exits, t1.above_threshold) == (
        "t1", 5, 3, True,
    )  # fmt: skip
    assert t1.share == pytest.approx(0.6)
    assert (t2.therapist, t2.sessions, t2.sessions_with_exits, t2.above_threshold) == (
        "t2", 3, 3, False,
    )  # fmt: skip
    assert t2.share == 1.0
    # Absences in minutes: technical x6 2, x1 3, x0 6 (nearest-rank quartiles: ranks 1, 2,
    # 3 of 3); x3 never came back: 23:10 to the session's end at 23:50, 40 minutes.
    assert d.absences == (
        AbsenceSummary("technical", 3, 2.0, 2.0, 3.0, 6.0, 6.0, pytest.approx(11 / 3)),
        AbsenceSummary("client_safety", 1, 20.0, 20.0, 20.0, 20.0, 20.0, 20.0),
        AbsenceSummary("health_emergency", 1, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0),
        AbsenceSummary("other", 1, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0),
        AbsenceSummary("unclassified", 1, 40.0, 40.0, 40.0, 40.0, 40.0, 40.0),
    )
    assert d.absence_bins == (
        AbsenceBin("technical", 2, 3, 1),  # x6: 2
        AbsenceBin("technical", 3, 5, 1),  # x1: 3
        AbsenceBin("technical", 5, 10, 1),  # x0: 6
        AbsenceBin("client_safety", 20, 30, 1),  # x2: 20
        AbsenceBin("health_emergency", 10, 15, 1),  # x4: 10
        AbsenceBin("other", 10, 15, 1),  # x5: 10
        AbsenceBin("unclassified", 30, 60, 1),  # x3: 40
    )
    # s5's exits overlap: 15 minutes away, not 20, so 40 net minutes support 90834 (38).
    assert d.billing_by_week == (
        WeekStatusCount(OCT19, "supported", 1),  # s0
        WeekStatusCount(OCT26, "supported", 1),  # s1
        WeekStatusCount(OCT26, "undercoded", 1),  # s3: 60 minutes reach 90837
        WeekStatusCount(OCT26, "unsupported", 1),  # s2: 35 minutes, 90837 needs 53
        WeekStatusCount(OCT26, "not_billed", 1),  # s4
        WeekStatusCount(NOV2, "supported", 3),  # s5, s6, s7
    )


def test_the_figures_match_the_billing_report_of_the_same_sessions(fixed: Database) -> None:
    with fixed.uow(read_only=True) as uow:
        lines = {
            line.session: line
            for line in run_billing(uow.records, Selection(*PERIOD, practice="p1"))
        }
        drill = SqlDashboard(uow.connection).sessions_of(DashboardFilter("p1", *PERIOD))
    assert [s.session for s in drill] == ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]
    assert {s.session: (s.net_minutes, s.status) for s in drill} == {
        sid: (line.net_minutes, line.status) for sid, line in lines.items()
    }
    assert [s.exits for s in drill] == [1, 1, 1, 0, 1, 2, 1, 0]


def test_filters_narrow_every_figure(fixed: Database) -> None:
    # t2: s4, s5, s6 and their exits x3, x4, x5, x6.
    d = _dashboard(fixed, therapist="t2")
    assert d.totals == Totals(sessions=3, sessions_with_exits=3, exits=4, therapists=1)
    assert [(c.week, c.reason, c.exits) for c in d.exits_by_week] == [
        (OCT26, "unclassified", 1),
        (NOV2, "technical", 1),
        (NOV2, "health_emergency", 1),
        (NOV2, "other", 1),
    ]
    # Room r2: s3 (t1), s4 and s5 (t2); exits x3, x4, x5.
    d = _dashboard(fixed, room="r2")
    assert d.totals == Totals(sessions=3, sessions_with_exits=2, exits=3, therapists=2)
    assert [(t.therapist, t.sessions, t.sessions_with_exits) for t in d.therapists] == [
        ("t1", 1, 0),
        ("t2", 2, 2),
    ]
    # Reason technical: x0, x1, x6; every session still counts as a session, and billing
    # shows only those with a technical exit (s0, s1, s6).
    d = _dashboard(fixed, reason="technical")
    assert d.totals == Totals(sessions=8, sessions_with_exits=3, exits=3, therapists=2)
    assert [(t.therapist, t.sessions, t.sessions_with_exits) for t in d.therapists] == [
        ("t1", 5, 2),
        ("t2", 3, 1),
    ]
    assert [a.reason for a in d.absences] == ["technical"]
    assert {c.reason for c in d.exits_by_week} == {"technical"}
    assert d.billing_by_week == (
        WeekStatusCount(OCT19, "supported", 1),
        WeekStatusCount(OCT26, "supported", 1),
        WeekStatusCount(NOV2, "supported", 1),
    )
    d = _dashboard(fixed, reason="unclassified")
    assert (d.totals.exits, d.absences[0].maximum) == (1, 40.0)
    # The period in p1's dates: from Monday 11-02 leaves out s4 (Sunday 23:00 local, though
    # Monday in UTC): s5, s6, s7.
    d = _dashboard(fixed, period=(NOV2, date(2026, 11, 8)))
    assert d.totals == Totals(sessions=3, sessions_with_exits=2, exits=3, therapists=2)
    # And to the end of November: s9 joins.
    d = _dashboard(fixed, period=(PERIOD[0], date(2026, 11, 30)))
    assert (d.totals.sessions, d.totals.exits) == (9, 8)


def test_drill_down_lists_the_sessions_behind_a_bar(fixed: Database) -> None:
    with fixed.uow(read_only=True) as uow:
        queries = SqlDashboard(uow.connection)
        unsupported = queries.sessions_of(DashboardFilter("p1", *PERIOD, status="unsupported"))
        week = queries.sessions_of(DashboardFilter("p1", OCT26, date(2026, 11, 1), therapist="t2"))
        safety = queries.sessions_of(DashboardFilter("p1", *PERIOD, reason="client_safety"))
        first_two = queries.sessions_of(DashboardFilter("p1", *PERIOD), limit=2)
    assert [(s.session, s.net_minutes, s.status) for s in unsupported] == [
        ("s2", 35, "unsupported")
    ]
    assert [(s.session, s.room, s.exits, s.net_minutes) for s in week] == [("s4", "r2", 1, 10)]
    assert [s.session for s in safety] == ["s2"]
    assert [s.session for s in first_two] == ["s0", "s1"]


def test_another_practice_never_counts(fixed: Database) -> None:
    # p2's own dashboard: its one session and exit, and nothing of p1's.
    d = _dashboard(fixed, practice="p2")
    assert d.totals == Totals(sessions=1, sessions_with_exits=1, exits=1, therapists=1)
    assert (d.absences[0].exits, d.absences[0].maximum) == (1, 30.0)
    # Within p2's tenant scope, p1's dashboard is empty, whatever the filter names.
    with tenancy.scope("p2"), fixed.uow(read_only=True) as uow:
        queries = SqlDashboard(uow.connection)
        sealed = queries.dashboard(DashboardFilter("p1", *PERIOD), THRESHOLD)
        drill = queries.sessions_of(DashboardFilter("p1", *PERIOD))
    assert sealed.totals == Totals(0, 0, 0, 0)
    assert sealed.exits_by_week == ()
    assert drill == []
    with tenancy.scope("p1"), fixed.uow(read_only=True) as uow:
        mine = SqlDashboard(uow.connection).dashboard(DashboardFilter("p1", *PERIOD), THRESHOLD)
    assert mine.totals.sessions == 8


def test_the_policy_threshold_is_the_policys(fixed: Database) -> None:
    policy = load_policy()
    with fixed.uow(read_only=True) as uow:
        d = build_dashboard(SqlDashboard(uow.connection), DashboardFilter("p1", *PERIOD), policy)
    assert d.threshold == ExitRateThreshold(True, 20, 0.05, policy.version)
    assert not any(t.above_threshold for t in d.therapists)  # fewer than 20 sessions each
    assert d.threshold.exceeded(20, 2)
    assert not d.threshold.exceeded(20, 1)  # 5 % is allowed


CODES = [
    [], ["90832"], ["90834"], ["90837"], ["90833"], ["90836"], ["90838"], ["90839"],
    ["90840"], ["90839", "90840"], ["90839", "90840", "90840"], ["90840", "90839", "90840"],
    ["90832", "90837"], ["90834", "90836"], ["90785"], ["90837", "90785"],
    ["90839", "90839"], ["90838", "90839", "90840"],
]  # fmt: skip


def test_billing_status_in_sql_is_the_domains(db: Database) -> None:
    """Every combination of billed codes with every length from 1 to 160 minutes, some with
    an exit: the status and net minutes SQL computes are `reconcile`'s."""
    records: list[dict[str, Any]] = []
    for n, (codes, minutes) in enumerate(itertools.product(CODES, range(1, 161, 3))):
        sid = f"g{n}"
        start = parse_instant("2026-06-01T08:00:00+00:00") + n * 3 * 3_600_000_000
        records.append(_session(sid, "pg", "t1", "r1", _iso(start, "+00:00"), minutes, codes))
        if n % 3 == 0 and minutes > 10:
            left = _iso(start + 5 * 60_000_000, "+00:00")
            back = None if n % 2 else _iso(start + 12 * 60_000_000, "+00:00")
            records.append(_exit(f"gx{n}", sid, left, back, "technical"))
    _load(db, records, {"pg": "UTC"})
    period = (date(2026, 6, 1), date(2027, 6, 1))
    with db.uow(read_only=True) as uow:
        lines = list(run_billing(uow.records, Selection(*period, practice="pg")))
        queries = SqlDashboard(uow.connection)
        drill = queries.sessions_of(DashboardFilter("pg", *period), limit=10**6)
        d = queries.dashboard(DashboardFilter("pg", *period), THRESHOLD)
    assert len(drill) == len(lines) == len(CODES) * 54
    assert [(s.session, s.net_minutes, s.status) for s in drill] == [
        (line.session, line.net_minutes, line.status) for line in lines
    ]
    by_status = Counter[str]()
    for c in d.billing_by_week:
        by_status[c.status] += c.sessions
    assert by_status == Counter(line.status for line in lines)
    assert set(by_status) == {"supported", "undercoded", "unsupported", "not_billed"}


def test_zone_offsets_find_the_changes_to_the_second() -> None:
    lo = parse_instant("2026-01-01T00:00:00-05:00")
    hi = parse_instant("2027-01-01T00:00:00-05:00")
    hour = 3_600_000_000
    assert zone_offsets("America/New_York", lo, hi) == [
        (lo, -5 * hour),
        (parse_instant("2026-03-08T07:00:00+00:00"), -4 * hour),
        (parse_instant("2026-11-01T06:00:00+00:00"), -5 * hour),
    ]
    assert zone_offsets("UTC", lo, hi) == [(lo, 0)]
