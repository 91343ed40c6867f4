"""The supervisor's overview (open client concerns with Acknowledge, the week's findings with
Acknowledge / Assign / Resolve, exits needing attention; billing lines for billers) and the
admin's read-only users and rooms."""

from datetime import date
from typing import Annotated

from fastapi import Form, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse
from markupsafe import escape

from stepout.domain.commands import AcknowledgeConcern
from stepout.domain.permissions import allowed
from stepout.domain.protocol import ProtocolError
from stepout.domain.reviews import finding_key
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit
from stepout.services.reviews import Step, sees_review_notes, with_reviews
from stepout.services.reviews import therapists as reviews_therapists
from stepout.web.actions import perform
from stepout.web.api.reviews import take_step
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
        can_review=allowed(user, "finding.review"),
        sees_notes=sees_review_notes(user),
        therapists=overview.therapists,
        findings_from=overview.findings_from,
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


def _review(
    request: Request,
    state: AppState,
    session: PageSession,
    key: str,
    step: Step,
    *,
    note: str = "",
    assignee: str | None = None,
    first_day: str = "",
) -> Response:
    """One review step from the overview: the card again (htmx), or back to the overview."""
    user = session.user
    require(user, "finding.review")
    try:
        selection = Selection(date_from=date.fromisoformat(first_day) if first_day else None)
    except ValueError:
        selection = Selection()
    error: str | None = None
    error_status = status.HTTP_200_OK
    try:
        take_step(state, user, key, step, note=note, assignee=assignee, selection=selection)
    except HTTPException as e:
        if e.status_code in (status.HTTP_403_FORBIDDEN, status.HTTP_404_NOT_FOUND):
            raise
        error, error_status = str(e.detail), e.status_code
    if not is_htmx(request):
        if error is not None:
            return overview_page(request, state, session, error_status, error)
        return redirect(f"/supervise#finding-{key}")
    # The card again: the finding as the audit finds it now, with its review (stored, or
    # open when a first step failed).
    scoped = selection_of(user.practice, selection)
    with state.db.uow(read_only=True) as uow:
        found = run_audit(uow.records, scoped, state.policy, state.now())
        mine = [f for f in found if finding_key(user.practice, f) == key]
        items = with_reviews(uow.reviews, user.practice, mine)
        therapists = reviews_therapists(uow, user.practice)
    if not items:  # reviewed, but no longer found in this period
        gone = '<li class="card" id="finding-{}"><p role="status">{}</p></li>'.format(
            escape(key), "Done. This finding is no longer in the period shown: reload the overview."
        )
        return HTMLResponse(gone)
    context = staff(
        session,
        zone_of(state, user.practice),
        item=items[0],
        can_review=True,
        sees_notes=True,
        therapists=therapists,
        findings_from=first_day,
        finding_error=error,
    )
    return render(request, "_finding.html", context)


def selection_of(practice: str, selection: Selection) -> Selection:
    return Selection(selection.date_from, selection.date_to, practice, selection.therapist)


Note = Annotated[str, Form(max_length=20_000)]
FirstDay = Annotated[str, Form(alias="from", max_length=10)]


@router.post("/supervise/findings/{key}/acknowledge")
def acknowledge_finding(
    request: Request, state: State, session: CheckedSession, key: str, note: Note = "",
    first_day: FirstDay = "",
) -> Response:  # fmt: skip
    return _review(request, state, session, key, "acknowledge", note=note, first_day=first_day)


@router.post("/supervise/findings/{key}/resolve")
def resolve_finding(
    request: Request, state: State, session: CheckedSession, key: str, note: Note = "",
    first_day: FirstDay = "",
) -> Response:  # fmt: skip
    return _review(request, state, session, key, "resolve", note=note, first_day=first_day)


@router.post("/supervise/findings/{key}/assign")
def assign_finding(
    request: Request,
    state: State,
    session: CheckedSession,
    key: str,
    assignee: Annotated[str, Form(max_length=200)] = "",
    first_day: FirstDay = "",
) -> Response:
    return _review(request, state, session, key, "assign", assignee=assignee, first_day=first_day)


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
