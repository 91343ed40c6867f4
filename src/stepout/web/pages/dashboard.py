"""The supervisor's dashboard: the practice's charts for a period, narrowed by therapist, room
and reason (a GET form), each chart drawn in the browser from its spec (embedded as JSON,
`static/dashboard.js`) and followed by its figures as a table; and the sessions behind a bar
(`/supervise/dashboard/sessions`), where a click on a bar leads."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final
from urllib.parse import urlencode

from fastapi import HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse

from stepout.adapters.db.dashboard import SqlDashboard
from stepout.adapters.reports.charts import charts, reason_label, status_label
from stepout.adapters.reports.monthly import build_report, month_bounds, render_html
from stepout.domain.accounts import User
from stepout.services.audit import clean_target, span_target
from stepout.services.dashboard import (
    REASONS,
    STATUSES,
    Dashboard,
    DashboardFilter,
    SessionLine,
    build_dashboard,
)
from stepout.web.audit import record_read
from stepout.web.pages.common import staff, today_in, zone_of
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import render
from stepout.web.security import PageSession, State, require
from stepout.web.state import AppState

router = page_router()

DEFAULT_DAYS: Final = 91  # thirteen weeks up to today
MAX_DAYS: Final = 800  # about two years
MAX_SESSIONS: Final = 200


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


def read_dashboard(state: AppState, filter_: DashboardFilter) -> Dashboard:
    with state.db.uow(read_only=True) as uow:
        return build_dashboard(SqlDashboard(uow.connection), filter_, state.policy)


@router.get("/supervise/dashboard")
def dashboard(request: Request, state: State, session: PageSession) -> Response:
    user = session.user
    require(user, "dashboard.read")
    zone = zone_of(state, user.practice)
    choices = _choices(state, user)
    filter_ = _filter(state, user, zone, _params(request))
    figures = read_dashboard(state, filter_)
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


@router.get("/supervise/dashboard/sessions")
def sessions(request: Request, state: State, session: PageSession) -> Response:
    user = session.user
    require(user, "dashboard.read")
    zone = zone_of(state, user.practice)
    filter_ = _filter(state, user, zone, _params(request))
    with state.db.uow(read_only=True) as uow:
        lines: list[SessionLine] = SqlDashboard(uow.connection).sessions_of(
            filter_, MAX_SESSIONS + 1
        )
    cut = len(lines) > MAX_SESSIONS
    lines = lines[:MAX_SESSIONS]
    record_read(
        state, "session.list", span_target(filter_.date_from, filter_.date_to), count=len(lines)
    )
    context = staff(
        session,
        zone,
        f=filter_,
        lines=lines,
        cut=cut,
        max_sessions=MAX_SESSIONS,
        reason_label=reason_label,
        status_label=status_label,
        back=_dashboard_link(filter_),
    )
    return render(request, "dashboard_sessions.html", context, status.HTTP_200_OK)
