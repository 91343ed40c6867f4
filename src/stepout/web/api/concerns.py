"""A client's concerns, for supervisors: read one, acknowledge it."""

from typing import Any

from fastapi import APIRouter

from stepout.domain.accounts import User
from stepout.domain.commands import AcknowledgeConcern
from stepout.domain.records import Concern
from stepout.web.actions import perform
from stepout.web.api.schemas import concern_json
from stepout.web.audit import record_read
from stepout.web.reading import may_see, not_found
from stepout.web.security import ApiUser, State, require
from stepout.web.state import AppState

router = APIRouter(tags=["concerns"])


def visible_concern(state: AppState, user: User, concern_id: str) -> Concern:
    """The concern, if the user's role reads concerns and may see its session; else 404."""
    with state.db.uow(read_only=True) as uow:
        concern = uow.records.concern(concern_id)
        session = None if concern is None else uow.records.session(concern.session)
    if concern is None or not may_see(user, session):
        raise not_found("concern")
    return concern


@router.get("/concerns/{concern_id}", responses={404: {"description": "No such concern."}})
def read_concern(concern_id: str, user: ApiUser, state: State) -> dict[str, Any]:
    require(user, "concerns.read")
    concern = visible_concern(state, user, concern_id)
    record_read(state, "concern.read", concern.id)
    return concern_json(concern)


@router.post(
    "/concerns/{concern_id}/acknowledge",
    responses={404: {"description": "No such concern."}, 409: {"description": "Already done."}},
)
def acknowledge(concern_id: str, user: ApiUser, state: State) -> dict[str, Any]:
    """The concern has been heard (supervisors)."""
    require(user, "concern.acknowledge")
    visible_concern(state, user, concern_id)
    record = perform(
        state, AcknowledgeConcern(practice=user.practice, actor=user.id, concern=concern_id)
    ).record
    assert isinstance(record, Concern)
    return concern_json(record)
