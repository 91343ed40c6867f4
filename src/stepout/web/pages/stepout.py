"""Stepping out: the reason chosen on the session page opens a short form, prefilled with a
sentence for the client; its submission is the one DeclareExit command. The confidentiality
checklist and "I told the client" are never pre-ticked."""

from typing import Annotated, Any

from fastapi import Form, Request, Response, status

from stepout.domain.commands import DeclareExit
from stepout.domain.protocol import ProtocolError
from stepout.web.actions import perform
from stepout.web.audit import record_read
from stepout.web.errors import protocol_status
from stepout.web.pages import wording
from stepout.web.pages.common import staff, text, zone_of
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import redirect, render
from stepout.web.reading import check_session, not_found
from stepout.web.security import CheckedSession, PageSession, State, require
from stepout.web.state import AppState

router = page_router()

BAD_VALUES = "Check the form: a number of minutes from 1 to 600, texts up to 2000 letters."


def blank_form(reason: str) -> dict[str, Any]:
    words = wording.REASONS[reason]
    return {
        "reason": reason,
        "reason_note": "",
        "explanation": words.suggested,
        "told": False,
        "safeguards": [],
        "minutes": "" if words.minutes is None else str(words.minutes),
        "ems": "",
        "ems_note": "",
        "attendant": "",
    }


def form_page(
    request: Request,
    state: AppState,
    session: PageSession,
    session_id: str,
    form: dict[str, Any],
    status_code: int = status.HTTP_200_OK,
    error: str | None = None,
) -> Response:
    user = session.user
    s = check_session(state, user, session_id)
    with state.db.uow(read_only=True) as uow:
        already_out = uow.records.open_exit_of_therapist(user.practice, user.id)
    record_read(state, "session.read", s.id)
    context = staff(
        session,
        zone_of(state, user.practice),
        s=s,
        form=form,
        reason=wording.REASONS[form["reason"]],
        words=wording,
        already_out=already_out,
        error=error,
    )
    return render(request, "step_out.html", context, status_code)


@router.get("/console/sessions/{session_id}/step-out")
def step_out_form(
    request: Request, state: State, session: PageSession, session_id: str, reason: str = ""
) -> Response:
    require(session.user, "exit.declare")
    if reason not in wording.REASONS:
        raise not_found("reason")
    return form_page(request, state, session, session_id, blank_form(reason))


def _minutes(value: str) -> int | None:
    if not value.strip():
        return None
    minutes = int(value)
    if not 1 <= minutes <= 600:
        raise ValueError("out of range")
    return minutes


@router.post("/console/sessions/{session_id}/exits")
def declare_exit(
    request: Request,
    state: State,
    session: CheckedSession,
    session_id: str,
    reason: Annotated[str, Form(max_length=40)] = "",
    reason_note: Annotated[str, Form(max_length=4000)] = "",
    explanation: Annotated[str, Form(max_length=4000)] = "",
    told: Annotated[str, Form(max_length=10)] = "",
    safeguards: Annotated[list[str] | None, Form()] = None,
    expected_minutes: Annotated[str, Form(max_length=10)] = "",
    ems: Annotated[str, Form(max_length=20)] = "",
    ems_note: Annotated[str, Form(max_length=4000)] = "",
    attendant: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    user = session.user
    require(user, "exit.declare")
    if reason not in wording.REASONS:
        raise not_found("reason")
    check_session(state, user, session_id)
    chosen = [g for g in safeguards or [] if g in wording.SAFEGUARDS]
    decided = ems if ems in wording.EMS else ""
    form: dict[str, Any] = {
        "reason": reason,
        "reason_note": reason_note,
        "explanation": explanation,
        "told": told == "yes",
        "safeguards": chosen,
        "minutes": expected_minutes,
        "ems": decided,
        "ems_note": ems_note,
        "attendant": attendant,
    }

    def refuse(message: str, code: int = status.HTTP_422_UNPROCESSABLE_CONTENT) -> Response:
        return form_page(request, state, session, session_id, form, code, message)

    try:
        note = text(reason_note)
        words = text(explanation)
        minutes = _minutes(expected_minutes)
        who = text(attendant, 200)
        ems_words = text(ems_note)
    except ValueError:
        return refuse(BAD_VALUES)
    if reason == "other" and note is None:
        return refuse("Add a short note saying why you are stepping out.")
    command = DeclareExit(
        practice=user.practice,
        actor=user.id,
        session=session_id,
        reason=reason,
        reason_note=note,
        client_informed="before_leaving" if form["told"] else "not_informed",
        explanation=words,
        safeguards=tuple(chosen),
        expected_minutes=minutes,
        client_attended_by=who,
        ems=decided or None,
        ems_note=ems_words if decided else None,
    )
    try:
        outcome = perform(state, command)
    except ProtocolError as e:
        return refuse(e.message, protocol_status(e))
    return redirect(f"/console/exits/{outcome.record.id}")
