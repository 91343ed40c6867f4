"""An exit after the tap: read it, return, check in, inform the client, confirm safeguards,
decide on emergency services, arrange an attendant, classify a sensor exit, sign."""

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from stepout.domain.accounts import User
from stepout.domain.commands import (
    ArrangeAttendant,
    CheckIn,
    ClassifyExit,
    ConfirmSafeguard,
    DecideEms,
    ExitCommand,
    InformClient,
    Return,
    SignExit,
)
from stepout.domain.records import Exit
from stepout.web.actions import perform
from stepout.web.api.schemas import (
    AttendantBody,
    ClassifyBody,
    EmsBody,
    InformBody,
    ReturnBody,
    SafeguardBody,
    exit_json,
)
from stepout.web.audit import record_read
from stepout.web.reading import visible_exit
from stepout.web.security import ApiUser, State, require
from stepout.web.state import AppState

router = APIRouter(tags=["exits"])

_REFUSALS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such exit in your practice (or not one of your sessions)."},
    409: {"description": "The protocol refuses the change now; the body says why."},
}


async def _run(state: AppState, user: User, operation: str, command: ExitCommand) -> dict[str, Any]:
    """The command on a worker thread (one hop: the handlers are async)."""
    require(user, operation)
    outcome = await run_in_threadpool(
        perform, state, command, check=lambda records: visible_exit(records, user, command.exit)
    )
    assert isinstance(outcome.record, Exit)
    return exit_json(outcome.record)


@router.get("/exits-to-sign")
def exits_to_sign(user: ApiUser, state: State) -> list[dict[str, Any]]:
    """The caller's exits that are back but not signed yet, oldest first (therapists)."""
    require(user, "exit.sign")
    with state.db.uow(read_only=True) as uow:
        exits = uow.records.exits_to_sign(user.practice, user.id)
    record_read(state, "exit.list", "list", count=len(exits))
    return [exit_json(x) for x in exits]


@router.get("/exits/{exit_id}", responses={404: _REFUSALS[404]})
def read_exit(exit_id: str, user: ApiUser, state: State) -> dict[str, Any]:
    require(user, "session.read")
    with state.db.uow(read_only=True) as uow:
        x, _ = visible_exit(uow.records, user, exit_id)
    record_read(state, "exit.read", x.id)
    return exit_json(x)


@router.post("/exits/{exit_id}/return", responses=_REFUSALS)
async def return_(exit_id: str, body: ReturnBody, user: ApiUser, state: State) -> dict[str, Any]:
    """The therapist is back ("back" tap); `checked_in`: the client is settled."""
    command = Return(
        practice=user.practice, actor=user.id, exit=exit_id, checked_in=body.checked_in
    )
    return await _run(state, user, "exit.update", command)


@router.post("/exits/{exit_id}/check-in", responses=_REFUSALS)
async def check_in(exit_id: str, user: ApiUser, state: State) -> dict[str, Any]:
    """After the return, the client is comfortable and regulated."""
    command = CheckIn(practice=user.practice, actor=user.id, exit=exit_id)
    return await _run(state, user, "exit.update", command)


@router.post("/exits/{exit_id}/inform", responses=_REFUSALS)
async def inform(exit_id: str, body: InformBody, user: ApiUser, state: State) -> dict[str, Any]:
    """What the client was told, and when (after the return, usually)."""
    command = InformClient(
        practice=user.practice,
        actor=user.id,
        exit=exit_id,
        client_informed=body.client_informed,
        explanation=body.explanation,
    )
    return await _run(state, user, "exit.update", command)


@router.post("/exits/{exit_id}/safeguards", responses=_REFUSALS)
async def confirm_safeguard(
    exit_id: str, body: SafeguardBody, user: ApiUser, state: State
) -> dict[str, Any]:
    """Confirm one confidentiality safeguard (a second confirmation changes nothing)."""
    command = ConfirmSafeguard(
        practice=user.practice, actor=user.id, exit=exit_id, safeguard=body.safeguard
    )
    return await _run(state, user, "exit.update", command)


@router.post("/exits/{exit_id}/ems", responses=_REFUSALS)
async def decide_ems(exit_id: str, body: EmsBody, user: ApiUser, state: State) -> dict[str, Any]:
    """Emergency services were called, or are not needed (with an optional note)."""
    command = DecideEms(
        practice=user.practice, actor=user.id, exit=exit_id, ems=body.ems, note=body.note
    )
    return await _run(state, user, "exit.update", command)


@router.post("/exits/{exit_id}/attendant", responses=_REFUSALS)
async def arrange_attendant(
    exit_id: str, body: AttendantBody, user: ApiUser, state: State
) -> dict[str, Any]:
    """Who stays with the client while the therapist is out."""
    command = ArrangeAttendant(
        practice=user.practice,
        actor=user.id,
        exit=exit_id,
        client_attended_by=body.client_attended_by,
    )
    return await _run(state, user, "exit.update", command)


@router.post("/exits/{exit_id}/classify", responses=_REFUSALS)
async def classify(exit_id: str, body: ClassifyBody, user: ApiUser, state: State) -> dict[str, Any]:
    """Give a sensor-detected exit its reason."""
    command = ClassifyExit(
        practice=user.practice,
        actor=user.id,
        exit=exit_id,
        reason=body.reason,
        reason_note=body.reason_note,
    )
    return await _run(state, user, "exit.update", command)


@router.post("/exits/{exit_id}/sign", responses=_REFUSALS)
async def sign(exit_id: str, user: ApiUser, state: State) -> dict[str, Any]:
    """Sign the exit's documentation; later changes are amendments."""
    command = SignExit(practice=user.practice, actor=user.id, exit=exit_id)
    return await _run(state, user, "exit.sign", command)
