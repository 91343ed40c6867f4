"""A finding's review on the API: `POST /findings/{key}/acknowledge|assign|resolve` (supervisors
and admins), and the JSON of a review that `GET /findings` shows beside each finding."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from stepout.adapters.db.findings_store import lookup
from stepout.domain.accounts import User
from stepout.domain.instants import format_instant
from stepout.domain.reviews import NOTE_LIMIT, Review, ReviewError
from stepout.services.ports import Selection
from stepout.services.reviews import (
    FindingNotFound,
    NotATherapist,
    Step,
    review_step,
)
from stepout.web import audit
from stepout.web.security import ApiUser, State, require
from stepout.web.state import AppState

router = APIRouter(tags=["findings"])

INPUT_CODES = frozenset({"note_required", "note_too_long", "assignee_required"})


def review_json(review: Review) -> dict[str, Any]:
    """A review as the API shows it (times in ISO 8601, UTC)."""
    body = review.as_dict()
    for name in ("acknowledged_at", "resolved_at"):
        value = body[name]
        body[name] = None if value is None else format_instant(value)
    return body


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(max_length=NOTE_LIMIT * 2, description="Free text, required.")]
    date_from: Annotated[
        date | None,
        Field(
            alias="from",
            description="The period the finding was listed over (for exit-rate-high).",
        ),
    ] = None
    date_to: Annotated[date | None, Field(alias="to")] = None


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: Annotated[str, Field(max_length=200, description="A therapist's user id.")]
    date_from: Annotated[date | None, Field(alias="from")] = None
    date_to: Annotated[date | None, Field(alias="to")] = None


def take_step(
    state: AppState,
    user: User,
    key: str,
    step: Step,
    *,
    note: str = "",
    assignee: str | None = None,
    selection: Selection | None = None,
) -> Review:
    """One review step for the web edge (API and pages): its audit record is written with
    its event; a step that fails is recorded as failed on its own; an unknown key is a 404
    (which the middleware records as refused)."""
    require(user, "finding.review")
    ctx = audit.current()
    try:
        review = review_step(
            state.db.uow,
            state.policy,
            user,
            key,
            step,
            at=state.now(),
            caller=ctx.caller,
            note=note,
            assignee=assignee,
            selection=selection,
            lookup=lookup,
        )
    except FindingNotFound:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "No such finding in this practice."
        ) from None
    except (ReviewError, NotATherapist) as e:
        audit.record(state, f"finding.{step}", key, outcome="failed")
        code = getattr(e, "code", "assignee")
        if isinstance(e, NotATherapist) or code in INPUT_CODES:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from None
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    ctx.recorded = True
    return review


_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No finding of this practice has this key."},
    409: {"description": "The step does not apply in the finding's state."},
}


@router.post("/findings/{key}/acknowledge", responses=_RESPONSES)
def acknowledge(key: str, body: NoteBody, user: ApiUser, state: State) -> dict[str, Any]:
    """Acknowledge an open finding, with a note."""
    selection = Selection(body.date_from, body.date_to)
    review = take_step(state, user, key, "acknowledge", note=body.note, selection=selection)
    return review_json(review)


@router.post("/findings/{key}/assign", responses=_RESPONSES)
def assign(key: str, body: AssignBody, user: ApiUser, state: State) -> dict[str, Any]:
    """Assign a finding (open or acknowledged) to a therapist of the practice."""
    selection = Selection(body.date_from, body.date_to)
    review = take_step(state, user, key, "assign", assignee=body.assignee, selection=selection)
    return review_json(review)


@router.post("/findings/{key}/resolve", responses=_RESPONSES)
def resolve(key: str, body: NoteBody, user: ApiUser, state: State) -> dict[str, Any]:
    """Resolve an acknowledged finding, with a note."""
    selection = Selection(body.date_from, body.date_to)
    review = take_step(state, user, key, "resolve", note=body.note, selection=selection)
    return review_json(review)
