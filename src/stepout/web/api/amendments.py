"""Corrections as amendments, kept beside the original as clinical addenda are:
`POST /sessions/{id}/amend`, `/exits/{id}/amend`, `/concerns/{id}/amend`."""

from typing import Any

from fastapi import APIRouter

from stepout.domain.accounts import User
from stepout.domain.commands import Amend
from stepout.domain.protocol.amendments import AMENDABLE
from stepout.domain.records import Concern, Exit, Session
from stepout.web.actions import perform
from stepout.web.api.concerns import visible_concern
from stepout.web.api.schemas import AmendBody, bad_input, concern_json, exit_json, session_json
from stepout.web.reading import check_exit, check_session, session_view
from stepout.web.security import ApiUser, State, require
from stepout.web.state import AppState

router = APIRouter(tags=["amendments"])

_REFUSALS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such record in your practice (or not one of your sessions)."},
    409: {"description": "Not now (a session in progress is amended once it has ended)."},
    422: {"description": "A field that cannot be amended, or a value that is not valid."},
}


def _amend(
    state: AppState, user: User, kind: str, record_id: str, body: AmendBody
) -> Session | Exit | Concern:
    fields = AMENDABLE[kind]
    for name in body.changes:
        if name not in fields:
            raise bad_input(
                f"changes.{name}",
                f"not an amendable field of a {kind}; amendable: {', '.join(sorted(fields))}",
            )
    command = Amend(
        practice=user.practice,
        actor=user.id,
        kind=kind,
        id=record_id,
        changes=body.changes,
        note=body.note,
    )
    return perform(state, command).record


@router.post("/sessions/{session_id}/amend", responses=_REFUSALS)
def amend_session(session_id: str, body: AmendBody, user: ApiUser, state: State) -> dict[str, Any]:
    """Correct an ended session; answers the session as it now reads."""
    require(user, "record.amend")
    check_session(state, user, session_id)
    _amend(state, user, "session", session_id, body)
    view = session_view(state, user, session_id)
    return session_json(view.session, view.exits, state.now(), view.concerns)


@router.post("/exits/{exit_id}/amend", responses=_REFUSALS)
def amend_exit(exit_id: str, body: AmendBody, user: ApiUser, state: State) -> dict[str, Any]:
    """Correct an exit (after signing, or what only an amendment may say)."""
    require(user, "record.amend")
    check_exit(state, user, exit_id)
    x = _amend(state, user, "exit", exit_id, body)
    assert isinstance(x, Exit)
    return exit_json(x)


@router.post("/concerns/{concern_id}/amend", responses=_REFUSALS)
def amend_concern(concern_id: str, body: AmendBody, user: ApiUser, state: State) -> dict[str, Any]:
    """Correct a concern's record (roles that read concerns)."""
    require(user, "record.amend")
    require(user, "concerns.read")
    visible_concern(state, user, concern_id)
    concern = _amend(state, user, "concern", concern_id, body)
    assert isinstance(concern, Concern)
    return concern_json(concern)
