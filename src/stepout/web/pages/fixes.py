"""The small forms that complete an exit, one command each: confirm a safeguard, record what
the client was told, the emergency-services decision, who stays with the client, the check-in,
the reason of an exit a sensor detected (asked on the console after the return).
Posted from the away screen or the exit's page (htmx swaps the exit's panel)."""

from typing import Annotated

from fastapi import Form, Request, Response

from stepout.domain.commands import (
    ArrangeAttendant,
    CheckIn,
    ClassifyExit,
    ConfirmSafeguard,
    DecideEms,
    InformClient,
)
from stepout.web.pages.common import text
from stepout.web.pages.exits import act, refused
from stepout.web.pages.routing import page_router
from stepout.web.security import CheckedSession, State

router = page_router()

NO_ATTENDANT = "Write who is staying with the client (a role is enough)."


@router.post("/console/exits/{exit_id}/safeguards")
def confirm_safeguard(
    request: Request,
    state: State,
    session: CheckedSession,
    exit_id: str,
    safeguard: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    return act(
        request,
        state,
        session,
        exit_id,
        lambda u: ConfirmSafeguard(
            practice=u.practice, actor=u.id, exit=exit_id, safeguard=safeguard
        ),
    )


@router.post("/console/exits/{exit_id}/inform")
def inform_client(
    request: Request,
    state: State,
    session: CheckedSession,
    exit_id: str,
    explanation: Annotated[str, Form(max_length=4000)] = "",
    when: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        words = text(explanation)
    except ValueError:
        words = None
    if words is None:
        return refused(
            request, state, session, exit_id, "Write what you told the client (up to 2000 letters)."
        )
    return act(
        request,
        state,
        session,
        exit_id,
        lambda u: InformClient(
            practice=u.practice, actor=u.id, exit=exit_id, client_informed=when, explanation=words
        ),
    )


@router.post("/console/exits/{exit_id}/ems")
def decide_ems(
    request: Request,
    state: State,
    session: CheckedSession,
    exit_id: str,
    ems: Annotated[str, Form(max_length=20)] = "",
    ems_note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    try:
        note = text(ems_note)
    except ValueError:
        return refused(request, state, session, exit_id, "The note is limited to 2000 letters.")
    return act(
        request,
        state,
        session,
        exit_id,
        lambda u: DecideEms(practice=u.practice, actor=u.id, exit=exit_id, ems=ems, note=note),
    )


@router.post("/console/exits/{exit_id}/attendant")
def arrange_attendant(
    request: Request,
    state: State,
    session: CheckedSession,
    exit_id: str,
    attendant: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    try:
        who = text(attendant, 200)
    except ValueError:
        who = None
    if who is None:
        return refused(request, state, session, exit_id, NO_ATTENDANT)
    return act(
        request,
        state,
        session,
        exit_id,
        lambda u: ArrangeAttendant(
            practice=u.practice, actor=u.id, exit=exit_id, client_attended_by=who
        ),
    )


@router.post("/console/exits/{exit_id}/check-in")
def check_in(request: Request, state: State, session: CheckedSession, exit_id: str) -> Response:
    return act(
        request,
        state,
        session,
        exit_id,
        lambda u: CheckIn(practice=u.practice, actor=u.id, exit=exit_id),
    )


@router.post("/console/exits/{exit_id}/classify")
def classify(
    request: Request,
    state: State,
    session: CheckedSession,
    exit_id: str,
    reason: Annotated[str, Form(max_length=40)] = "",
    reason_note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Why the therapist was out, when a sensor saw them out of session; then the exit's page
    (what else it lacks, and Sign)."""
    try:
        note = text(reason_note)
    except ValueError:
        return refused(request, state, session, exit_id, "The note is too long.")
    return act(
        request,
        state,
        session,
        exit_id,
        lambda u: ClassifyExit(
            practice=u.practice, actor=u.id, exit=exit_id, reason=reason, reason_note=note
        ),
    )
