"""Downloads of the pages' tables, as CSV or JSON: `GET /supervise/export/{table}.{csv|json}`
with the same rows, filters and roles as the page that shows the table.

- The overview's tables (`findings`, `queue`, `concerns`, `exits`, `billing`): the rows of
  `/supervise` (its windows, its cuts), each needing the operation that shows it there.
- The dashboard's (`exits-by-week`, `therapist-share`, `absences`, `findings-by-week`,
  `billing-by-week`) and the sessions behind a bar (`sessions`): the dashboard's filter in
  the query (`from`, `to`, `therapist`, `room`, `reason`, `status`, and the drill-down's
  `exited`, `rule`, `severity`), as `/supervise/dashboard` and its drill-down.

Each download is recorded in the audit trail (`table.export`) before it is sent. The paths
are literal (no path parameter), each listed in `ROUTES`.
"""

from collections.abc import Callable
from datetime import date, timedelta
from typing import Final

from fastapi import Request, Response

from stepout.adapters.reports.charts import charts
from stepout.domain.accounts import User
from stepout.domain.permissions import ROUTES, operations_of
from stepout.services import tables
from stepout.services.audit import span_target
from stepout.services.reviews import sees_review_notes
from stepout.web.audit import record_read
from stepout.web.pages.common import today_in, zone_of
from stepout.web.pages.dashboard import (
    MAX_SESSIONS,
    _filter,
    _params,
    drill_down,
    narrowed,
    read_dashboard,
)
from stepout.web.pages.overview import FINDINGS_DAYS, read_overview
from stepout.web.pages.routing import page_router
from stepout.web.security import PageSession, State, require
from stepout.web.state import AppState

router = page_router()

PREFIX: Final = "/supervise/export/"
OVERVIEW_TABLES: Final = ("findings", "queue", "concerns", "exits", "billing")
CHART_TABLES: Final = (
    "exits-by-week",
    "therapist-share",
    "absences",
    "findings-by-week",
    "billing-by-week",
)
TABLES: Final = (*OVERVIEW_TABLES, *CHART_TABLES, "sessions")
FORMATS: Final = {"csv": "text/csv; charset=utf-8", "json": "application/json; charset=utf-8"}
EXPORT: Final = "table.export"


def path_of(table: str, extension: str) -> str:
    return f"{PREFIX}{table}.{extension}"


def _needs(table: str) -> tuple[str, ...]:
    """What the table's route needs, as `ROUTES` says (the same for both formats)."""
    return operations_of(ROUTES[f"GET {path_of(table, 'csv')}"])


def _overview_table(state: AppState, user: User, table: str) -> tuple[tables.Table, str]:
    """The overview's table, and the audit target: the findings' and billing's period (the
    last 7 days: `2026-01-29..end`), `list` for the concerns and exits."""
    zone = zone_of(state, user.practice)
    o = read_overview(state, user, zone)
    week = span_target(date.fromisoformat(o.findings_from), None) if o.findings_from else "list"
    if table == "findings":
        return tables.finding_counts(o.findings), week
    if table == "queue":
        notes = sees_review_notes(user)
        return tables.review_queue(o.queue, zone, sees_notes=notes), week
    if table == "concerns":
        return tables.open_concerns(o.concerns, zone), "list"
    if table == "exits":
        items = ((i.exit, i.session, len(i.missing)) for i in o.exits)
        return tables.exits_needing_attention(items, zone), "list"
    if not o.findings_from:  # a biller without findings.read would not have it
        week = span_target(today_in(zone, state.now()) - timedelta(days=FINDINGS_DAYS), None)
    return tables.billing_lines(o.billing), week


def _dashboard_table(
    state: AppState, user: User, table: str, request: Request
) -> tuple[tables.Table, str]:
    zone = zone_of(state, user.practice)
    params = _params(request)
    filter_ = _filter(state, user, zone, params)
    target = span_target(filter_.date_from, filter_.date_to)
    if table == "sessions":
        lines = drill_down(state, filter_, zone, narrowed(params), MAX_SESSIONS)
        return tables.session_lines(lines[:MAX_SESSIONS], zone), target
    chart = next(c for c in charts(read_dashboard(state, filter_)) if c.id == table)
    return tables.figures(table, chart.table.columns, chart.table.rows), target


def export(
    request: Request, state: AppState, session: PageSession, table: str, ext: str
) -> Response:
    user = session.user
    for operation in _needs(table):
        require(user, operation)
    if table in OVERVIEW_TABLES:
        built, target = _overview_table(state, user, table)
    else:
        built, target = _dashboard_table(state, user, table, request)
    body = tables.to_csv(built) if ext == "csv" else tables.to_json(built)
    record_read(state, EXPORT, target, count=len(built.rows))
    day = today_in(zone_of(state, user.practice), state.now())
    name = tables.file_name(built, user.practice, day, ext)
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(body.encode("utf-8"), media_type=FORMATS[ext], headers=headers)


def _route(table: str, ext: str) -> Callable[[Request, State, PageSession], Response]:
    def route(request: Request, state: State, session: PageSession) -> Response:
        return export(request, state, session, table, ext)

    route.__name__ = f"export_{table.replace('-', '_')}_{ext}"
    return route


for _table in TABLES:
    for _ext in FORMATS:
        router.add_api_route(path_of(_table, _ext), _route(_table, _ext), methods=["GET"])
