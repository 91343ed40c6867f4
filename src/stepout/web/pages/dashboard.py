"""The supervisor's dashboard, where a supervisor lands after signing in: first what needs
them now (open client concerns, findings to review, each leading to the queue on
/supervise), then the practice's charts for a period, narrowed by therapist, room and reason
(a GET form), each chart drawn in the browser from its spec (embedded as JSON,
`static/dashboard.js`) and followed by its figures as a table; and the sessions behind a bar
(`/supervise/dashboard/sessions`), where a click on a bar leads.

The findings chart reads the findings store (`adapters.db.findings_store`): when the stored
audit is stale the page starts a new one and waits for it briefly (`REFRESH_WAIT`); a larger
practice's page answers with the last audit meanwhile, and says when it was computed."""

from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final
from urllib.parse import urlencode

from fastapi import HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse

from stepout.adapters.db.attention import OpenConcerns, open_concerns
from stepout.adapters.db.dashboard import SqlDashboard
from stepout.adapters.db.drilldown import session_lines, sessions_with_exits
from stepout.adapters.db.findings_store import FindingsStore, refresh_soon
from stepout.adapters.reports.charts import (
    charts,
    computed_label,
    reason_label,
    severity_label,
    status_label,
)
from stepout.adapters.reports.monthly import build_report, month_bounds, render_html
from stepout.domain.accounts import User
from stepout.domain.instants import MICROS_PER_DAY, Instant, day_bounds
from stepout.domain.permissions import allowed
from stepout.policy.findings import SEVERITIES
from stepout.policy.model import RULE_IDS
from stepout.services.audit import clean_target, span_target
from stepout.services.dashboard import (
    REASONS,
    STATUSES,
    Dashboard,
    DashboardFilter,
    FindingsByWeek,
    SessionLine,
    build_dashboard,
)
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit
from stepout.services.reviews import with_reviews
from stepout.web.audit import record_read
from stepout.web.pages.common import staff, today_in, zone_of
from stepout.web.pages.overview import FINDINGS_DAYS
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import render
from stepout.web.security import PageSession, State, require
from stepout.web.state import AppState

router = page_router()

DEFAULT_DAYS: Final = 91  # thirteen weeks up to today
MAX_DAYS: Final = 800  # about two years
MAX_SESSIONS: Final = 200
REFRESH_WAIT: Final = 0.2  # seconds the page waits for a new audit before showing the last
WAITING: Final = ("open", "acknowledged")  # review states that still need a supervisor


@dataclass(frozen=True, slots=True)
class Choices:
    therapists: list[tuple[str, str]]  # id, username
    rooms: list[tuple[str, str]]  # id, name


def _day(value: str | None, name: str) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise HTTPException(422, f"{name}: expected a date such as 2026-11-30") from None


def _id(value: str | None, name: str) -> str | None:
    if value is None or not value.strip():
        return None
    if clean_target(value) is None:
        raise HTTPException(422, f"{name}: not an id")
    return value


def _one_of(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if value is None or not value.strip():
        return None
    if value not in allowed:
        raise HTTPException(422, f"{name}: not one of {', '.join(allowed)}")
    return value


def _choices(state: AppState, user: User) -> Choices:
    with state.db.uow(read_only=True) as uow:
        users = uow.accounts.users(user.practice)
        rooms = uow.accounts.rooms(user.practice)
    therapists = sorted((u.id, u.username) for u in users if u.role == "therapist")
    return Choices(therapists, sorted((r.id, r.name) for r in rooms))


def _filter(state: AppState, user: User, zone: str, params: dict[str, str]) -> DashboardFilter:
    today = today_in(zone, state.now())
    last = _day(params.get("to"), "to") or today
    first = _day(params.get("from"), "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise HTTPException(422, "to: is before from")
    if (last - first).days >= MAX_DAYS:
        raise HTTPException(422, f"from: the period is longer than {MAX_DAYS} days")
    therapist = _id(params.get("therapist"), "therapist")
    room = _id(params.get("room"), "room")
    reason = _one_of(params.get("reason"), REASONS, "reason")
    billing = _one_of(params.get("status"), STATUSES, "status")
    return DashboardFilter(
        user.practice,
        first,
        last,
        therapist=therapist,
        room=room,
        reason=reason,
        status=billing,  # type: ignore[arg-type]  # checked against STATUSES
    )


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if len(v) <= 100}


def _months(f: DashboardFilter) -> list[str]:
    """The months the period touches, latest first (at most 12), for the report's links."""
    found: list[str] = []
    y, m = f.date_to.year, f.date_to.month
    while (y, m) >= (f.date_from.year, f.date_from.month) and len(found) < 12:
        found.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return found


def _dashboard_link(f: DashboardFilter) -> str:
    values = {"from": f.date_from, "to": f.date_to, "therapist": f.therapist, "room": f.room}
    values["reason"] = f.reason
    return "/supervise/dashboard?" + urlencode({k: str(v) for k, v in values.items() if v})


def read_findings(state: AppState, f: DashboardFilter, zone: str) -> FindingsByWeek | None:
    """The findings chart's figures from the store, refreshed first if stale (see above)."""
    now = state.now()
    with state.db.uow(read_only=True) as uow:
        store = FindingsStore(uow.connection)
        run = store.run(f.practice)
        why = store.stale(run, state.policy, zone, now)
    if why is not None:
        wait = None if run is None else REFRESH_WAIT  # nothing to show yet: wait for it
        if refresh_soon(state.db, f.practice, state.policy, now, wait):
            why = None
    with state.db.uow(read_only=True) as uow:
        store = FindingsStore(uow.connection)
        run = store.run(f.practice)
        if run is None:
            return None
        counts = store.week_counts(f, zone)
        about = store.about_therapists(f.practice)
    return FindingsByWeek(tuple(counts), run.as_of, run.policy_version, about, why)


def read_dashboard(state: AppState, filter_: DashboardFilter) -> Dashboard:
    with state.db.uow(read_only=True) as uow:
        figures = build_dashboard(SqlDashboard(uow.connection), filter_, state.policy)
        found = uow.records.practice(filter_.practice)
    zone = found.timezone if found is not None else figures.timezone
    return replace(figures, findings=read_findings(state, filter_, zone))


@dataclass(frozen=True, slots=True)
class Attention:
    """The top of the dashboard: what needs the supervisor now."""

    concerns: OpenConcerns | None  # None: the user does not read concerns
    limit_days: float | None  # `concern-unacknowledged`'s limit (None: the rule is off)
    oldest_days: int | None  # whole days since the oldest open concern was raised
    findings: Counter[tuple[str, str]] | None  # (state, severity) -> count; None: not shown
    earlier: Counter[tuple[str, str]] | None = None  # the same, older sessions (stored audit)
    findings_days: int = FINDINGS_DAYS

    def waiting(self, state: str) -> int:
        return sum(n for (s, _), n in (self.findings or Counter()).items() if s == state)

    def waiting_earlier(self) -> int:
        return sum((self.earlier or Counter()).values())


def read_attention(state: AppState, user: User, zone: str) -> Attention:
    """Open concerns (all of them, however old) and the review state of the findings about
    the last `FINDINGS_DAYS` days' sessions: the queue on /supervise, counted."""
    now: Instant = state.now()
    rule = state.policy.rules.concern_unacknowledged
    limit = float(rule.days) if rule.enabled else None
    concerns: OpenConcerns | None = None
    oldest: int | None = None
    counts: Counter[tuple[str, str]] | None = None
    earlier: Counter[tuple[str, str]] | None = None
    with state.db.uow(read_only=True) as uow:
        if allowed(user, "concerns.read"):
            before = None if limit is None else now - round(limit * MICROS_PER_DAY)
            concerns = open_concerns(uow.connection, user.practice, before)
            if concerns.oldest is not None:
                oldest = max(0, (now - concerns.oldest) // MICROS_PER_DAY)
        if allowed(user, "findings.read"):
            first = today_in(zone, now) - timedelta(days=FINDINGS_DAYS)
            week = Selection(practice=user.practice, date_from=first)
            found = run_audit(uow.records, week, state.policy, now)
            counts = Counter(
                (r.review.state, r.finding.severity)
                for r in with_reviews(uow.reviews, user.practice, found)
                if r.review.state in WAITING
            )
            since = day_bounds(first, zone)[0]
            earlier = FindingsStore(uow.connection).waiting_before(user.practice, since)
    return Attention(concerns, limit, oldest, counts, earlier)


@router.get("/supervise/dashboard")
def dashboard(request: Request, state: State, session: PageSession) -> Response:
    user = session.user
    require(user, "dashboard.read")
    zone = zone_of(state, user.practice)
    choices = _choices(state, user)
    filter_ = _filter(state, user, zone, _params(request))
    figures = read_dashboard(state, filter_)  # refreshes the stored audit if need be
    attention = read_attention(state, user, zone)
    known = {t for t, _ in choices.therapists}
    therapists = choices.therapists + [
        (t.therapist, t.therapist) for t in figures.therapists if t.therapist not in known
    ]
    record_read(
        state,
        "dashboard.read",
        span_target(filter_.date_from, filter_.date_to),
        count=figures.totals.sessions,
    )
    context = staff(
        session,
        zone,
        d=figures,
        f=filter_,
        attention=attention,
        states=WAITING,
        severities=SEVERITIES,
        severity_label=severity_label,
        reason_label=reason_label,
        computed=computed_label(figures),
        charts=charts(figures, links=True),
        therapists=therapists,
        rooms=choices.rooms,
        reasons=[(r, reason_label(r)) for r in REASONS],
        months=_months(filter_),
    )
    return render(request, "dashboard.html", context)


@router.get("/supervise/dashboard/report")
def report(request: Request, state: State, session: PageSession) -> Response:
    """The month's report for the user's practice, as `stepout report` writes it (a file to
    save: self-contained HTML that prints to PDF)."""
    user = session.user
    require(user, "dashboard.read")
    month = request.query_params.get("month", "")
    try:
        month_bounds(month)
    except ValueError as e:
        raise HTTPException(422, f"month: {e}") from None
    with state.db.uow(read_only=True) as uow:
        built = build_report(
            uow.connection, uow.records, month, state.policy, state.now(), [user.practice]
        )
    sessions = sum(s.dashboard.totals.sessions for s in built.sections)
    html = render_html(built)
    record_read(state, "report.export", month_target(month), count=sessions)
    name = f"stepout-report-{user.practice}-{month}.html"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:; frame-ancestors 'none'",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(html, headers=headers)


def month_target(month: str) -> str:
    first, last = month_bounds(month)
    return span_target(first, last)


@dataclass(frozen=True, slots=True)
class Narrowed:
    """What a drill-down narrows to beyond the dashboard's filter: sessions with an exit (a
    therapist's bar of the share chart), or with a stored finding of a rule (and severity)."""

    exited: bool = False
    rule: str | None = None
    severity: str | None = None

    def query(self) -> dict[str, str]:
        values = {"exited": "1" if self.exited else None, "rule": self.rule}
        values["severity"] = self.severity
        return {k: v for k, v in values.items() if v}


def narrowed(params: dict[str, str]) -> Narrowed:
    exited = _one_of(params.get("exited"), ("1",), "exited") is not None
    rule = _one_of(params.get("rule"), RULE_IDS, "rule")
    severity = _one_of(params.get("severity"), SEVERITIES, "severity")
    if severity is not None and rule is None:
        raise HTTPException(422, "severity: needs a rule")
    return Narrowed(exited, rule, severity)


def drill_down(
    state: AppState, filter_: DashboardFilter, zone: str, narrow: Narrowed, limit: int
) -> list[SessionLine]:
    """The sessions behind a bar, at most `limit`, by start then id."""
    if narrow.rule is not None:
        read_findings(state, filter_, zone)  # the store as the chart showed it, or newer
    with state.db.uow(read_only=True) as uow:
        if narrow.rule is not None:
            store = FindingsStore(uow.connection)
            ids = store.sessions_of(filter_, zone, narrow.rule, narrow.severity, limit)
            return session_lines(uow.records, ids)
        if narrow.exited:
            ids = sessions_with_exits(uow.connection, filter_, zone, limit)
            return session_lines(uow.records, ids)
        return SqlDashboard(uow.connection).sessions_of(filter_, limit)


@router.get("/supervise/dashboard/sessions")
def sessions(request: Request, state: State, session: PageSession) -> Response:
    user = session.user
    require(user, "dashboard.read")
    zone = zone_of(state, user.practice)
    params = _params(request)
    filter_ = _filter(state, user, zone, params)
    narrow = narrowed(params)
    lines = drill_down(state, filter_, zone, narrow, MAX_SESSIONS + 1)
    cut = len(lines) > MAX_SESSIONS
    lines = lines[:MAX_SESSIONS]
    record_read(
        state, "session.list", span_target(filter_.date_from, filter_.date_to), count=len(lines)
    )
    context = staff(
        session,
        zone,
        f=filter_,
        narrow=narrow,
        lines=lines,
        cut=cut,
        max_sessions=MAX_SESSIONS,
        reason_label=reason_label,
        status_label=status_label,
        severity_label=severity_label,
        back=_dashboard_link(filter_),
    )
    return render(request, "dashboard_sessions.html", context, status.HTTP_200_OK)
