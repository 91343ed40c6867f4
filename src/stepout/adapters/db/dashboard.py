"""The dashboard's figures as SQL aggregates (`stepout.services.dashboard`), on SQLite and
PostgreSQL alike: the database groups and counts, Python only shapes the few result rows.

Two implementations of the same figures: `SqlDashboard` groups the rollup that the
projection keeps (`stepout.adapters.db.rollup`: per-week, per-day and per-exit rows), and
`DirectDashboard` computes them from the sessions and exits at each call. The direct one is
the reference: the tests hold the two equal on random data, amendments, imports and rebuilds.
What follows describes the direct queries; the rollup stores their results per day.

**Tenant scope.** Every query names the filter's practice; a unit of work whose scope does not
reach it gets an empty dashboard (on PostgreSQL the row-level policies of migration 0007 would
hide the rows anyway).

**Weeks in the practice's time zone, on both engines.** A session's local time is its UTC
start plus the zone's offset at that instant. The offsets within the period are few (a DST
change or two a year), so Python reads them from `zoneinfo` and the SQL adds them with a
`CASE` on `start_us`; the Monday of the local week is then integer arithmetic on the local
day number (1970-01-01 was a Thursday). No approximation: the same expression runs on both
engines and is exact across DST changes.

**Billing status in SQL.** A session's net minutes are its span minus the union of its exits
clipped to it: a window over each session's exits in order of leaving gives each exit's part
not covered by an earlier one, so overlapping exits count once (as
`stepout.domain.facetime.absent_micros`). The status is `stepout.domain.billing`'s rules
written as a `CASE` over what the billed codes' JSON text contains (the highest psychotherapy
and E/M rung billed, 90839, the number of 90840 units) and the net minutes; a test pins it
against `stepout.domain.billing.reconcile` on every combination of codes and minutes the
tests make.

**Findings by rule and severity** are not computed here: the rules are Python, judged over
the bundles (`services.reporting.run_audit`, seconds for a million sessions). A dashboard that
wants them fast needs them materialised: a `findings` table (rule, severity, session,
therapist, week) written by an audit run (per practice, nightly or after each import, keyed
by policy version and as-of), which this module could then group like the rest.
"""

from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)

from stepout.adapters.db import tenancy
from stepout.adapters.db.rows import P, S, X
from stepout.adapters.db.tables import (
    DashboardDayRow,
    DashboardExitRow,
    DashboardWeekRow,
    ExitRow,
    SessionRow,
)
from stepout.domain.billing import (
    CRISIS_FIRST_UNIT_MINUTES,
    CRISIS_PRIMARY,
    CRISIS_PRIMARY_MINUTES,
    CRISIS_UNIT,
    CRISIS_UNIT_STEP_MINUTES,
    PSYCHOTHERAPY,
    WITH_EM,
)
from stepout.domain.instants import MICROS_PER_DAY, MICROS_PER_MINUTE, day_bounds
from stepout.services.dashboard import (
    ABSENCE_EDGES,
    REASONS,
    STATUSES,
    UNCLASSIFIED,
    AbsenceBin,
    AbsenceSummary,
    Dashboard,
    DashboardFilter,
    ExitRateThreshold,
    SessionLine,
    TherapistShare,
    Totals,
    WeekReasonCount,
    WeekStatusCount,
)

_EPOCH_DAY: Final = date(1970, 1, 1)
_THURSDAY_SHIFT: Final = 3  # day 0 (1970-01-01) is a Thursday: day + 3 is 0 mod 7 on Mondays
_CODE_WIDTH: Final = len(f'"{CRISIS_UNIT}"')


# -- time zones ---------------------------------------------------------------------------


def _offset_us(zone: ZoneInfo, instant: int) -> int:
    moment = datetime.fromtimestamp(instant / 1_000_000, UTC).astimezone(zone)
    offset = moment.utcoffset()
    assert offset is not None
    return (offset.days * 86_400 + offset.seconds) * 1_000_000


def zone_offsets(zone_name: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The zone's UTC offsets over [lo, hi): (from instant, offset µs), the first from `lo`.
    Offset changes are found day by day (two changes within one day would be missed: no zone
    has them) and pinned to the second by bisection."""
    zone = ZoneInfo(zone_name)
    stride = MICROS_PER_DAY
    at = lo
    current = _offset_us(zone, at)
    spans = [(lo, current)]
    while at < hi:
        step = min(at + stride, hi)
        offset = _offset_us(zone, step)
        if offset != current:
            before, after = at, step  # offset(before) == current, offset(after) != current
            while after - before > 1_000_000:
                middle = (before + after) // 2 // 1_000_000 * 1_000_000
                if middle <= before:
                    middle = before + 1_000_000
                if _offset_us(zone, middle) == current:
                    before = middle
                else:
                    after = middle
            current = _offset_us(zone, after)
            spans.append((after, current))
        at = step
    return spans


def _local(instant: ColumnElement[int], offsets: Sequence[tuple[int, int]]) -> ColumnElement[Any]:
    """`instant` (a UTC µs column) shifted to the practice's local wall clock."""
    if len(offsets) == 1:
        return instant + offsets[0][1]
    whens = [(instant < start, instant + offsets[i - 1][1]) for i, (start, _) in enumerate(offsets)]
    return case(*whens[1:], else_=instant + offsets[-1][1])


def _week(instant: ColumnElement[int], offsets: Sequence[tuple[int, int]]) -> ColumnElement[int]:
    """The local Monday of `instant`'s ISO week, as a day number since 1970-01-01."""
    day = _local(instant, offsets) // MICROS_PER_DAY
    return (day + _THURSDAY_SHIFT) // 7 * 7 - _THURSDAY_SHIFT


def _day(number: int) -> date:
    return _EPOCH_DAY + timedelta(days=int(number))


# -- billing status -----------------------------------------------------------------------


def _has(codes: ColumnElement[str], code: str) -> ColumnElement[bool]:
    return codes.like(f'%"{code}"%')


def _rung_billed(
    codes: ColumnElement[str], ladder: Sequence[tuple[int, str]]
) -> ColumnElement[int]:
    """The highest rung of a graded family the billed codes name (1-3), 0 if none."""
    (_, low), (_, mid), (_, high) = ladder
    return case((_has(codes, high), 3), (_has(codes, mid), 2), (_has(codes, low), 1), else_=0)


def _rung_reached(net: Any) -> ColumnElement[int]:
    (low, _), (mid, _), (high, _) = PSYCHOTHERAPY
    return case((net < low, 0), (net < mid, 1), (net < high, 2), else_=3)


def _rung_minimum(rung: Any) -> ColumnElement[int]:
    (low, _), (mid, _), (high, _) = PSYCHOTHERAPY
    return case((rung == 3, high), (rung == 2, mid), (rung == 1, low), else_=0)


def billing_status(codes: ColumnElement[str], net: Any) -> ColumnElement[str]:
    """`stepout.domain.billing.billing_status(codes, net)` in SQL, `codes` being the stored
    JSON text of the billed codes (`["90837","90785"]`) and `net` whole net minutes."""
    psy = _rung_billed(codes, PSYCHOTHERAPY)
    em = _rung_billed(codes, WITH_EM)
    primary = _has(codes, CRISIS_PRIMARY)
    # 90840 units: occurrences of the quoted code in the text.
    units = (
        func.length(codes) - func.length(func.replace(codes, f'"{CRISIS_UNIT}"', ""))
    ) // _CODE_WIDTH
    rung = _rung_reached(net)
    reached_units = case(
        (net < CRISIS_FIRST_UNIT_MINUTES, 0),
        else_=(net - CRISIS_FIRST_UNIT_MINUTES) // CRISIS_UNIT_STEP_MINUTES + 1,
    )
    last_unit_minimum = CRISIS_FIRST_UNIT_MINUTES + CRISIS_UNIT_STEP_MINUTES * (units - 1)
    short = or_(
        and_(psy > 0, _rung_minimum(psy) > net),
        and_(em > 0, _rung_minimum(em) > net),
        and_(primary, net < CRISIS_PRIMARY_MINUTES),
        and_(units > 0, last_unit_minimum > net),
    )
    crisis = or_(primary, units > 0)
    undercoded = or_(
        and_(psy > 0, rung > psy),
        and_(em > 0, rung > em),
        and_(
            crisis,
            or_(and_(~primary, net >= CRISIS_PRIMARY_MINUTES), reached_units > units),
        ),
    )
    time_based = or_(psy > 0, em > 0, crisis)
    return case(
        (short, "unsupported"),
        (undercoded, "undercoded"),
        (time_based, "supported"),
        else_="not_billed",
    )


# -- the queries --------------------------------------------------------------------------


def _reason_is(reason: str) -> ColumnElement[bool]:
    return X.reason.is_(None) if reason == UNCLASSIFIED else X.reason == reason


def _reason_label() -> ColumnElement[str]:
    return func.coalesce(X.reason, UNCLASSIFIED)


def _duration() -> ColumnElement[int]:
    """`exit_duration`: to the return, or to the session's end; never negative."""
    until = func.coalesce(X.returned_us, S.end_us)
    return case((until > X.left_us, until - X.left_us), else_=0)


def _minutes(micros: Any) -> float:
    return float(micros) / MICROS_PER_MINUTE


class DirectDashboard:
    """The dashboard's figures computed from the base tables (`sessions`, `exits`) at each
    call: the reference the rollup must agree with (tests, `bench.dashboard --direct`), and
    the drill-down's session lists, which stay on the base tables (a page at a time)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _zone(self, practice: str) -> str | None:
        if not tenancy.reaches(tenancy.bound(self._conn), practice):
            return None
        found: str | None = self._conn.execute(
            select(P.timezone).where(P.id == practice)
        ).scalar_one_or_none()
        return found

    def _sessions(self, f: DashboardFilter, zone: str) -> list[ColumnElement[bool]]:
        lo = day_bounds(f.date_from, zone)[0]
        hi = day_bounds(f.date_to, zone)[1]
        where = [
            S.practice == f.practice,
            S.start_us >= lo,
            S.start_us < hi,
            S.end_us.is_not(None),
        ]
        if f.therapist is not None:
            where.append(S.therapist == f.therapist)
        if f.room is not None:
            where.append(S.room == f.room)
        return where

    def _exits(self, f: DashboardFilter, zone: str) -> list[ColumnElement[bool]]:
        """The exits of the selected sessions (joined to them), with the reason's filter.
        The practice and therapist are read from the exit's copies of them; on SQLite the
        session's start is written `start_us + 0` so that no index of the sessions serves
        it, and the plan reads the few exits and looks up each one's session, rather than
        every session of the period and an index probe for its exits. PostgreSQL's planner
        weighs both by its statistics: it gets the session's practice too, for its index."""
        lo = day_bounds(f.date_from, zone)[0]
        hi = day_bounds(f.date_to, zone)[1]
        start: ColumnElement[int] = S.start_us
        where = [X.practice == f.practice]
        if self._conn.dialect.name == "sqlite":
            start = S.start_us + 0
        else:  # PostgreSQL: let the sessions' (practice, start) index narrow the hash join
            where.append(S.practice == f.practice)
        where += [start >= lo, start < hi, S.end_us.is_not(None)]
        if f.therapist is not None:
            where.append(X.therapist == f.therapist)
        if f.room is not None:
            where.append(S.room == f.room)
        return where

    def _per_exit(self, f: DashboardFilter, where: list[ColumnElement[bool]]) -> Any:
        """Per selected session with an exit: its exits, those of the filter's reason
        (`matching`), and the µs its exits cover within it (`absent`, overlaps once)."""
        clipped_lo = case((X.left_us > S.start_us, X.left_us), else_=S.start_us)
        back = func.coalesce(X.returned_us, S.end_us)
        clipped_hi = case((back < S.end_us, back), else_=S.end_us)
        ordered = (
            select(
                X.session_pk.label("session_pk"),
                (_reason_is(f.reason) if f.reason is not None else literal(True)).label("match"),
                clipped_lo.label("lo"),
                clipped_hi.label("hi"),
                func.max(clipped_hi)
                .over(
                    partition_by=X.session_pk,
                    order_by=(clipped_lo, X.pk),
                    rows=(None, -1),
                )
                .label("covered"),
            )
            .join_from(ExitRow, SessionRow, X.session_pk == S.pk)
            .where(*where)
            .subquery("ordered")
        )
        start = case(
            (ordered.c.covered.is_(None), ordered.c.lo),
            (ordered.c.covered > ordered.c.lo, ordered.c.covered),
            else_=ordered.c.lo,
        )
        part = case((ordered.c.hi > start, ordered.c.hi - start), else_=0)
        return (
            select(
                ordered.c.session_pk,
                func.count().label("exits"),
                func.sum(case((ordered.c.match, 1), else_=0)).label("matching"),
                cast(func.sum(part), BigInteger).label("absent"),  # not NUMERIC
            )
            .group_by(ordered.c.session_pk)
            .subquery("per_exit")
        )

    def _per_session(
        self, f: DashboardFilter, zone: str, offsets: Sequence[tuple[int, int]]
    ) -> Select[Any]:
        """One row per selected session: week, therapist, exits (of the reason), net minutes
        and billing status: the drill-down's rows."""
        where = self._sessions(f, zone)
        per_exit = self._per_exit(f, self._exits(f, zone))
        net = (S.end_us - S.start_us - func.coalesce(per_exit.c.absent, 0)) // MICROS_PER_MINUTE
        net = case((net < 0, 0), else_=net)
        matching = func.coalesce(per_exit.c.matching, 0)
        return (
            select(
                S.id.label("session"),
                S.therapist.label("therapist"),
                S.room.label("room"),
                S.start_us.label("start_us"),
                S.end_us.label("end_us"),
                _week(S.start_us, offsets).label("week"),
                matching.label("matching"),
                func.coalesce(per_exit.c.exits, 0).label("exits"),
                net.label("net"),
                billing_status(S.billed_codes, net).label("status"),
            )
            # With a reason, only sessions with an exit can count: an inner join lets the
            # plan start from the exits.
            .join_from(
                SessionRow, per_exit, per_exit.c.session_pk == S.pk, isouter=f.reason is None
            )
            .where(*where)
        )

    def dashboard(self, filter_: DashboardFilter, threshold: ExitRateThreshold) -> Dashboard:
        f = filter_
        zone = self._zone(f.practice)
        if zone is None:
            return _empty(f, threshold)
        lo = day_bounds(f.date_from, zone)[0]
        hi = day_bounds(f.date_to, zone)[1]
        offsets = zone_offsets(zone, lo, hi)
        where = self._sessions(f, zone)
        conn = self._conn
        if conn.dialect.name == "postgresql":
            # Hash aggregates of a million sessions outgrow the default 4 MB and sort on disk;
            # for this transaction only.
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")

        # Exits: by week and reason; absence lengths per reason (bins, quartiles).
        exit_where = self._exits(f, zone)
        if f.reason is not None:
            exit_where.append(_reason_is(f.reason))
        reason = _reason_label()
        week = _week(S.start_us, offsets)
        duration = _duration()
        edges = [e * MICROS_PER_MINUTE for e in ABSENCE_EDGES]
        bin_of = case(
            *((duration < edge, i - 1) for i, edge in enumerate(edges) if i > 0),
            else_=len(edges) - 1,
        )
        # One pass for both figures: counts by (week, reason, bin), a few hundred groups,
        # summed here by (week, reason) and by (reason, bin).
        groups = conn.execute(
            select(week, reason, bin_of, func.count())
            .join_from(ExitRow, SessionRow, X.session_pk == S.pk)
            .where(*exit_where)
            .group_by(week, reason, bin_of)
        ).all()
        per_week: Counter[tuple[int, str]] = Counter()
        per_bin: Counter[tuple[str, int]] = Counter()
        for w, r, i, n in groups:
            per_week[(w, r)] += n
            per_bin[(r, i)] += n
        exits_by_week = sorted(
            (WeekReasonCount(_day(w), r, n) for (w, r), n in per_week.items()),
            key=lambda c: (c.week, REASONS.index(c.reason)),
        )
        absence_bins = sorted(
            (
                AbsenceBin(
                    r,
                    ABSENCE_EDGES[i],
                    ABSENCE_EDGES[i + 1] if i + 1 < len(ABSENCE_EDGES) else None,
                    n,
                )
                for (r, i), n in per_bin.items()
            ),
            key=lambda b: (REASONS.index(b.reason), b.lower),
        )

        ranked = (
            select(
                reason.label("reason"),
                duration.label("d"),
                func.row_number().over(partition_by=reason, order_by=duration).label("k"),
                func.count().over(partition_by=reason).label("n"),
            )
            .join_from(ExitRow, SessionRow, X.session_pk == S.pk)
            .where(*exit_where)
            .subquery("ranked")
        )
        k, n, d = ranked.c.k, ranked.c.n, ranked.c.d

        def at_rank(rank: ColumnElement[int]) -> ColumnElement[int]:
            return func.max(case((k == rank, d)))

        quartiles = conn.execute(
            select(
                ranked.c.reason,
                func.count(),
                func.min(d),
                at_rank((n + 3) // 4),
                at_rank((n + 1) // 2),
                at_rank((3 * n + 3) // 4),
                func.max(d),
                func.sum(d),
            ).group_by(ranked.c.reason)
        ).all()
        absences = sorted(
            (
                AbsenceSummary(
                    r,
                    count,
                    _minutes(low),
                    _minutes(q1),
                    _minutes(q2),
                    _minutes(q3),
                    _minutes(high),
                    _minutes(total) / count,
                )
                for r, count, low, q1, q2, q3, high, total in quartiles
            ),
            key=lambda a: REASONS.index(a.reason),
        )

        # Sessions: per therapist (all sessions; those with an exit of the reason), totals.
        by_therapist = select(S.therapist, func.count()).where(*where).group_by(S.therapist)
        per_therapist: dict[str, int] = {row[0]: row[1] for row in conn.execute(by_therapist)}
        left_rows = conn.execute(
            select(S.therapist, func.count(func.distinct(S.pk)), func.count())
            .join_from(ExitRow, SessionRow, X.session_pk == S.pk)
            .where(*exit_where)
            .group_by(S.therapist)
        ).all()
        left = {t: (n, x) for t, n, x in left_rows}
        therapists, totals = _shares(per_therapist, left, threshold)
        billing_by_week = self._billing(f, where, self._exits(f, zone), offsets)
        return Dashboard(
            filter=f,
            timezone=zone,
            threshold=threshold,
            totals=totals,
            exits_by_week=tuple(exits_by_week),
            therapists=therapists,
            absences=tuple(absences),
            absence_bins=tuple(absence_bins),
            billing_by_week=tuple(billing_by_week),
        )

    def _billing(
        self,
        f: DashboardFilter,
        where: list[ColumnElement[bool]],
        exit_where: list[ColumnElement[bool]],
        offsets: Sequence[tuple[int, int]],
    ) -> list[WeekStatusCount]:
        """Sessions by week and billing status. The status depends only on the billed codes
        and the net minutes, so the sessions are first counted by (week, codes, minutes), a
        few thousand groups, and the status is computed once per group. Every session counts
        with its gross minutes; the few with an exit are then taken out at their gross
        minutes and put back at their net ones (with a reason, only those with an exit of
        the reason count, at their net minutes)."""
        gross = (S.end_us - S.start_us) // MICROS_PER_MINUTE
        week = _week(S.start_us, offsets)
        per_exit = self._per_exit(f, exit_where)
        net = (S.end_us - S.start_us - per_exit.c.absent) // MICROS_PER_MINUTE
        net = case((net < 0, 0), else_=net)

        # The sessions with an exit (of the reason), by (week, codes, gross, net): read once.
        only = [per_exit.c.matching > 0] if f.reason is not None else []
        exited = (
            select(
                week.label("week"),
                S.billed_codes.label("codes"),
                gross.label("gross"),
                net.label("net"),
                func.count().label("n"),
            )
            .join_from(per_exit, SessionRow, per_exit.c.session_pk == S.pk)
            .where(*only)
            .group_by(week, S.billed_codes, gross, net)
            .cte("exited")
        )
        e = exited.c
        parts: list[Select[Any]] = [select(e.week, e.codes, e.net.label("minutes"), e.n)]
        if f.reason is None:
            parts.append(
                select(
                    week.label("week"),
                    S.billed_codes.label("codes"),
                    gross.label("minutes"),
                    func.count().label("n"),
                )
                .where(*where)
                .group_by(week, S.billed_codes, gross)
            )
            parts.append(select(e.week, e.codes, e.gross.label("minutes"), -e.n))
        groups = union_all(*parts).subquery("groups")
        status = billing_status(groups.c.codes, groups.c.minutes)
        stmt = (
            select(groups.c.week, status, func.sum(groups.c.n))
            .group_by(groups.c.week, status)
            .having(func.sum(groups.c.n) > 0)
        )
        if f.status is not None:
            stmt = stmt.where(status == f.status)
        rows = self._conn.execute(stmt).all()
        return sorted(
            (WeekStatusCount(_day(w), st, int(n)) for w, st, n in rows),
            key=lambda c: (c.week, STATUSES.index(c.status)),
        )

    def sessions_of(self, filter_: DashboardFilter, limit: int = 200) -> list[SessionLine]:
        f = filter_
        zone = self._zone(f.practice)
        if zone is None:
            return []
        lo = day_bounds(f.date_from, zone)[0]
        hi = day_bounds(f.date_to, zone)[1]
        per_session = self._per_session(f, zone, zone_offsets(zone, lo, hi)).subquery("ps")
        ps = per_session.c
        where: list[ColumnElement[bool]] = []
        if f.reason is not None:
            where.append(ps.matching > 0)
        if f.status is not None:
            where.append(ps.status == f.status)
        rows = self._conn.execute(
            select(
                ps.session,
                ps.therapist,
                ps.room,
                ps.start_us,
                ps.end_us,
                ps.exits,
                ps.net,
                ps.status,
            )
            .where(*where)
            .order_by(ps.start_us, ps.session)
            .limit(limit)
        ).all()
        return [SessionLine(*row) for row in rows]


def week_of(day: ColumnElement[int]) -> ColumnElement[int]:
    """The Monday of a local day's ISO week (day numbers since 1970-01-01), as `_week`."""
    return (day + _THURSDAY_SHIFT) // 7 * 7 - _THURSDAY_SHIFT


class SqlDashboard(DirectDashboard):
    """The dashboard's figures from the rollup (`stepout.adapters.db.rollup`): the same
    figures as `DirectDashboard`, grouped from per-week, per-day and per-exit rows that need
    no join instead of from every session of the period. The drill-down is the direct one
    (a page of sessions, from the base tables)."""

    def dashboard(self, filter_: DashboardFilter, threshold: ExitRateThreshold) -> Dashboard:
        f = filter_
        zone = self._zone(f.practice)
        if zone is None:
            return _empty(f, threshold)
        conn = self._conn
        if conn.dialect.name == "postgresql":
            # psycopg prepares a statement run often; PostgreSQL's generic plan for it cannot
            # see how many days the period holds. Plan each call for its own period.
            conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        first, last = (f.date_from - _EPOCH_DAY).days, (f.date_to - _EPOCH_DAY).days
        exits = DashboardExitRow.__table__.c
        exit_where: list[ColumnElement[bool]] = [
            exits.practice == f.practice,
            exits.day >= first,
            exits.day <= last,
        ]
        if f.therapist is not None:
            exit_where.append(exits.therapist == f.therapist)
        if f.room is not None:
            exit_where.append(exits.room == f.room)
        if f.reason is not None:
            exit_where.append(
                exits.reason.is_(None) if f.reason == UNCLASSIFIED else exits.reason == f.reason
            )

        # Exits: counts by week and reason; lengths by reason, as each distinct length and
        # its count (a few thousand rows), from which Python takes the bins and quartiles.
        reason = func.coalesce(exits.reason, UNCLASSIFIED)
        week = week_of(exits.day)
        per_week = conn.execute(
            select(week, reason, func.count()).where(*exit_where).group_by(week, reason)
        ).all()
        exits_by_week = sorted(
            (WeekReasonCount(_day(w), r, int(n)) for w, r, n in per_week),
            key=lambda c: (c.week, REASONS.index(c.reason)),
        )
        lengths = conn.execute(
            select(reason, exits.duration_us, func.count())
            .where(*exit_where)
            .group_by(reason, exits.duration_us)
        ).all()
        absences, absence_bins = _lengths(lengths)

        # Sessions: per therapist from the weeks and days; those with an exit (of the
        # reason) from the exits.
        counted = _session_counts(f, first, last).c
        sessions = counted.supported + counted.undercoded + counted.unsupported + counted.not_billed
        per_therapist: dict[str, int] = {
            t: int(n)
            for t, n in conn.execute(
                select(counted.therapist, func.sum(sessions)).group_by(counted.therapist)
            )
        }
        # Distinct sessions as groups of a subquery: hashed on PostgreSQL, where a
        # count(DISTINCT) sorts its whole input.
        per_session = (
            select(exits.therapist, exits.session_pk, func.count().label("n"))
            .where(*exit_where)
            .group_by(exits.therapist, exits.session_pk)
            .subquery("per_session")
        )
        left_rows = conn.execute(
            select(per_session.c.therapist, func.count(), func.sum(per_session.c.n)).group_by(
                per_session.c.therapist
            )
        ).all()
        left = {t: (int(n), int(x)) for t, n, x in left_rows}
        therapists, totals = _shares(per_therapist, left, threshold)

        # Billing by week: every session from the days; with a reason, the sessions with an
        # exit of it, from the exits.
        billing: list[WeekStatusCount] = []
        if f.reason is None:
            wanted = STATUSES if f.status is None else (f.status,)
            rows = conn.execute(
                select(counted.week, *(func.sum(counted[st]) for st in wanted)).group_by(
                    counted.week
                )
            ).all()
            for w, *counts in rows:
                for st, n in zip(wanted, counts, strict=True):
                    if n:
                        billing.append(WeekStatusCount(_day(w), st, int(n)))
        else:
            where = list(exit_where)
            if f.status is not None:
                where.append(exits.status == f.status)
            # A session's exits share its day, hence its week and status.
            sessions_of = (
                select(week.label("week"), exits.status, exits.session_pk)
                .where(*where)
                .group_by(week, exits.status, exits.session_pk)
                .subquery("sessions_of")
            )
            rows = conn.execute(
                select(sessions_of.c.week, sessions_of.c.status, func.count()).group_by(
                    sessions_of.c.week, sessions_of.c.status
                )
            ).all()
            billing = [WeekStatusCount(_day(w), st, int(n)) for w, st, n in rows]
        billing.sort(key=lambda c: (c.week, STATUSES.index(c.status)))
        return Dashboard(
            filter=f,
            timezone=zone,
            threshold=threshold,
            totals=totals,
            exits_by_week=tuple(exits_by_week),
            therapists=therapists,
            absences=tuple(absences),
            absence_bins=tuple(absence_bins),
            billing_by_week=tuple(billing),
        )


def _session_counts(f: DashboardFilter, first: int, last: int) -> Any:
    """Ended sessions by therapist, week and billing status over local days [first, last]:
    the period's full ISO weeks from `dashboard_weeks`, the days before and after them from
    `dashboard_days` (at most six at each end), as one subquery."""
    weeks, days = DashboardWeekRow.__table__.c, DashboardDayRow.__table__.c
    monday = (first + _THURSDAY_SHIFT) // 7 * 7 - _THURSDAY_SHIFT  # of the first day's week
    full_from = monday if monday == first else monday + 7
    full_to = (last + 1 + _THURSDAY_SHIFT) // 7 * 7 - _THURSDAY_SHIFT - 7  # last full Monday
    parts: list[Select[Any]] = []
    edges = [(first, last)]
    if full_from <= full_to:
        where = [weeks.practice == f.practice, weeks.week >= full_from, weeks.week <= full_to]
        if f.therapist is not None:
            where.append(weeks.therapist == f.therapist)
        if f.room is not None:
            where.append(weeks.room == f.room)
        parts.append(
            select(weeks.therapist, weeks.week, *(weeks[st] for st in STATUSES)).where(*where)
        )
        edges = [(first, full_from - 1), (full_to + 7, last)]
    for lo, hi in edges:
        if lo > hi:
            continue
        where = [days.practice == f.practice, days.day >= lo, days.day <= hi]
        if f.therapist is not None:
            where.append(days.therapist == f.therapist)
        if f.room is not None:
            where.append(days.room == f.room)
        parts.append(
            select(
                days.therapist, week_of(days.day).label("week"), *(days[st] for st in STATUSES)
            ).where(*where)
        )
    return union_all(*parts).subquery("counted")


def _lengths(rows: Sequence[Any]) -> tuple[list[AbsenceSummary], list[AbsenceBin]]:
    """Absence summaries and bins from (reason, length µs, exits of that length), exactly as
    `DirectDashboard` computes them in SQL (nearest-rank quartiles, integer ranks)."""
    edges = [e * MICROS_PER_MINUTE for e in ABSENCE_EDGES]
    by_reason: dict[str, list[tuple[int, int]]] = {}
    for r, d, n in rows:
        by_reason.setdefault(r, []).append((int(d), int(n)))
    absences: list[AbsenceSummary] = []
    bins: list[AbsenceBin] = []
    for r in sorted(by_reason, key=REASONS.index):
        counted = sorted(by_reason[r])
        n = sum(c for _, c in counted)
        wanted = [(n + 3) // 4, (n + 1) // 2, (3 * n + 3) // 4]
        found: list[int] = []
        seen = 0
        per_bin = [0] * len(edges)
        for d, c in counted:
            seen += c
            while len(found) < len(wanted) and seen >= wanted[len(found)]:
                found.append(d)
            per_bin[bisect_right(edges, d) - 1] += c
        total = sum(d * c for d, c in counted)
        q1, q2, q3 = found
        absences.append(
            AbsenceSummary(
                r,
                n,
                _minutes(counted[0][0]),
                _minutes(q1),
                _minutes(q2),
                _minutes(q3),
                _minutes(counted[-1][0]),
                _minutes(total) / n,
            )
        )
        bins += [
            AbsenceBin(
                r,
                ABSENCE_EDGES[i],
                ABSENCE_EDGES[i + 1] if i + 1 < len(ABSENCE_EDGES) else None,
                c,
            )
            for i, c in enumerate(per_bin)
            if c
        ]
    return absences, bins


def _shares(
    per_therapist: dict[str, int],
    left: dict[str, tuple[int, int]],
    threshold: ExitRateThreshold,
) -> tuple[tuple[TherapistShare, ...], Totals]:
    therapists = tuple(
        TherapistShare(
            t,
            count,
            left.get(t, (0, 0))[0],
            left.get(t, (0, 0))[0] / count,
            threshold.exceeded(count, left.get(t, (0, 0))[0]),
        )
        for t, count in sorted(per_therapist.items())
    )
    totals = Totals(
        sessions=sum(per_therapist.values()),
        sessions_with_exits=sum(n for n, _ in left.values()),
        exits=sum(x for _, x in left.values()),
        therapists=len(per_therapist),
    )
    return therapists, totals


def _empty(f: DashboardFilter, threshold: ExitRateThreshold) -> Dashboard:
    return Dashboard(f, "UTC", threshold, Totals(0, 0, 0, 0), (), (), (), (), ())
