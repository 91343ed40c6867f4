"""An exit's page: while the therapist is out, the away screen (a timer, "Back", the emergency
checklist); afterwards what is still missing, the addendum for the progress note, Sign and
Amend. "Back" and Sign are here; the small forms that complete an exit are in `fixes`."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Form, Request, Response, status

from stepout.domain import timeline
from stepout.domain.accounts import User
from stepout.domain.commands import Command, Return, SignExit
from stepout.domain.permissions import allowed
from stepout.domain.protocol import ProtocolError
from stepout.web.actions import perform
from stepout.web.audit import record_read
from stepout.web.errors import protocol_status
from stepout.web.pages import wording
from stepout.web.pages.addendum import addendum
from stepout.web.pages.checklist import missing
from stepout.web.pages.common import staff, zone_of
from stepout.web.pages.console import exit_amendments
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import redirect, render
from stepout.web.reading import check_exit, visible_exit
from stepout.web.security import CheckedSession, PageSession, State, require
from stepout.web.state import AppState

router = page_router()


def exit_page(
    request: Request,
    state: AppState,
    session: PageSession,
    exit_id: str,
    status_code: int = status.HTTP_200_OK,
    *,
    error: str | None = None,
) -> Response:
    user = session.user
    require(user, "session.read")
    with state.db.uow(read_only=True) as uow:
        x, s = visible_exit(uow.records, user, exit_id)
        away = x.returned_at is None and s.in_progress
        line = None
        if not away:  # the session's timeline, this exit marked (not on the away screen)
            others = uow.records.exits_of_session(s.id)
            amended = exit_amendments(uow.connection, [o.id for o in others])
            line = timeline.build(s, others, state.now(), amendments=amended)
    record_read(state, "exit.read", x.id)
    zone = zone_of(state, user.practice)
    own = s.therapist == user.id
    context = staff(
        session,
        zone,
        x=x,
        s=s,
        away=away,
        missing=missing(x),
        addendum=addendum(x, s, zone),
        can_fix=own and allowed(user, "exit.update") and x.signed_at is None,
        can_sign=own and allowed(user, "exit.sign") and x.signed_at is None and not away,
        can_amend=allowed(user, "record.amend") and not away,
        words=wording,
        now=state.now(),
        error=error,
        timeline=line,
        current_exit=x.id,
    )
    return render(request, "away.html" if away else "exit.html", context, status_code)


@router.get("/console/exits/{exit_id}")
def read_exit(request: Request, state: State, session: PageSession, exit_id: str) -> Response:
    return exit_page(request, state, session, exit_id)


def act(
    request: Request,
    state: AppState,
    session: PageSession,
    exit_id: str,
    command: Callable[[User], Command],
    operation: str = "exit.update",
) -> Response:
    """Run one command on the exit, then show the exit again (its message inline if refused)."""
    user = session.user
    require(user, operation)
    check_exit(state, user, exit_id)
    try:
        perform(state, command(user))
    except ProtocolError as e:
        return exit_page(request, state, session, exit_id, protocol_status(e), error=e.message)
    return redirect(f"/console/exits/{exit_id}")


def refused(
    request: Request, state: AppState, session: PageSession, exit_id: str, message: str
) -> Response:
    check_exit(state, session.user, exit_id)
    return exit_page(
        request, state, session, exit_id, status.HTTP_422_UNPROCESSABLE_CONTENT, error=message
    )


@router.post("/console/exits/{exit_id}/return")
def come_back(
    request: Request,
    state: State,
    session: CheckedSession,
    exit_id: str,
    checked_in: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    return act(
        request,
        state,
        session,
        exit_id,
        lambda u: Return(
            practice=u.practice, actor=u.id, exit=exit_id, checked_in=checked_in == "yes"
        ),
    )


@router.post("/console/exits/{exit_id}/sign")
def sign(request: Request, state: State, session: CheckedSession, exit_id: str) -> Response:
    return act(
        request,
        state,
        session,
        exit_id,
        lambda u: SignExit(practice=u.practice, actor=u.id, exit=exit_id),
        "exit.sign",
    )
