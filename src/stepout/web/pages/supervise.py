"""The supervisor's overview (open client concerns with Acknowledge, exits needing attention,
the week's findings; billing lines for billers) and the admin's read-only users and rooms."""

from fastapi import Request, Response, status

from stepout.domain.commands import AcknowledgeConcern
from stepout.domain.permissions import allowed
from stepout.domain.protocol import ProtocolError
from stepout.web.actions import perform
from stepout.web.audit import record_read
from stepout.web.errors import protocol_status
from stepout.web.pages import wording
from stepout.web.pages.common import is_htmx, staff, zone_of
from stepout.web.pages.overview import FINDINGS_DAYS, WINDOW_DAYS, read_overview
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import redirect, render
from stepout.web.reading import not_found
from stepout.web.security import CheckedSession, PageSession, State, require
from stepout.web.state import AppState

router = page_router()


def overview_page(
    request: Request,
    state: AppState,
    session: PageSession,
    status_code: int = status.HTTP_200_OK,
    error: str | None = None,
) -> Response:
    user = session.user
    require(user, "session.read")
    zone = zone_of(state, user.practice)
    overview = read_overview(state, user, zone)
    listed = len(overview.concerns) + len(overview.exits) + len(overview.billing)
    record_read(state, "overview.read", "list", count=listed)
    context = staff(
        session,
        zone,
        overview=overview,
        sees_concerns=allowed(user, "concerns.read"),
        can_acknowledge=allowed(user, "concern.acknowledge"),
        sees_findings=allowed(user, "findings.read"),
        sees_billing=allowed(user, "billing.read"),
        window_days=WINDOW_DAYS,
        findings_days=FINDINGS_DAYS,
        words=wording,
        error=error,
    )
    return render(request, "supervise.html", context, status_code)


@router.get("/supervise")
def supervise(request: Request, state: State, session: PageSession) -> Response:
    return overview_page(request, state, session)


@router.post("/supervise/concerns/{concern_id}/acknowledge")
def acknowledge(
    request: Request, state: State, session: CheckedSession, concern_id: str
) -> Response:
    user = session.user
    require(user, "concern.acknowledge")
    with state.db.uow(read_only=True) as uow:
        c = uow.records.concern(concern_id)
        s = None if c is None else uow.records.session(c.session)
    if c is None or s is None or s.practice != user.practice:
        raise not_found("concern")
    try:
        outcome = perform(
            state, AcknowledgeConcern(practice=user.practice, actor=user.id, concern=concern_id)
        )
    except ProtocolError as e:
        return overview_page(request, state, session, protocol_status(e), e.message)
    if is_htmx(request):
        context = staff(
            session, zone_of(state, user.practice), c=outcome.record, s=s, can_acknowledge=True
        )
        return render(request, "_concern.html", context)
    return redirect("/supervise")


@router.get("/admin")
def admin(request: Request, state: State, session: PageSession) -> Response:
    user = session.user
    require(user, "accounts.read")
    with state.db.uow(read_only=True) as uow:
        users = sorted(uow.accounts.users(user.practice), key=lambda u: (u.role, u.username))
        rooms = sorted(uow.accounts.rooms(user.practice), key=lambda r: r.id)
        practice = uow.records.practice(user.practice)
    context = staff(
        session,
        practice.timezone if practice is not None else "UTC",
        users=users,
        rooms=rooms,
        practice=practice,
    )
    return render(request, "admin.html", context)
