"""Sessions and their exits: list a day's, start, read, end, step out."""

from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response, status
from starlette.concurrency import run_in_threadpool

from stepout.domain.accounts import User
from stepout.domain.commands import DeclareExit, EndSession, StartSession
from stepout.domain.instants import day_bounds, to_datetime
from stepout.domain.permissions import sees_only_own_sessions
from stepout.domain.records import Exit, Session
from stepout.services.ports import AccountsUnitOfWork
from stepout.web.actions import perform
from stepout.web.api.schemas import NewExit, NewSession, exit_json, session_json
from stepout.web.audit import record_read
from stepout.web.reading import not_found, session_view, visible_session
from stepout.web.security import ApiUser, State, require

router = APIRouter(tags=["sessions"])


@router.get("/sessions")
def list_sessions(
    user: ApiUser,
    state: State,
    day: Annotated[
        date | None,
        Query(
            alias="date",
            description="YYYY-MM-DD, in the practice's time zone (default: today there)",
        ),
    ] = None,
) -> list[dict[str, Any]]:
    """The sessions started on one day, by start: a therapist's own, the practice's for the
    other roles; each with its exits and its gross and net minutes."""
    require(user, "session.read")
    at = state.now()
    with state.db.uow(read_only=True) as uow:
        practice = uow.records.practice(user.practice)
        zone = "UTC" if practice is None else practice.timezone
        wanted = day or to_datetime(at).astimezone(ZoneInfo(zone)).date()
        found = _sessions_of_day(uow, user, wanted, zone)
    record_read(state, "session.list", wanted.isoformat(), count=len(found))
    return [session_json(s, exits, at) for s, exits in found]


def _sessions_of_day(
    uow: AccountsUnitOfWork, user: User, day: date, zone: str
) -> list[tuple[Session, list[Exit]]]:
    records = uow.records
    first, after = day_bounds(day, zone)
    if sees_only_own_sessions(user):
        found = records.sessions_of_therapist(user.practice, user.id, first, after)
    else:
        found = records.sessions_of_practice(user.practice, first, after)
    return [(s, records.exits_of_session(s.id)) for s in found]


@router.post("/sessions", status_code=status.HTTP_201_CREATED)
def start_session(
    body: NewSession, user: ApiUser, state: State, response: Response
) -> dict[str, Any]:
    """Start a session now, with the token's user as the therapist: for the client and room
    named, or from one of the therapist's appointments (the session takes its id)."""
    require(user, "session.start")
    if body.appointment is not None:
        command = StartSession(
            practice=user.practice,
            actor=user.id,
            therapist=user.id,
            appointment=body.appointment,
        )
    else:
        assert body.client is not None
        assert body.room is not None
        with state.db.uow(read_only=True) as uow:
            if uow.accounts.room(user.practice, body.room) is None:
                raise not_found("room")
        command = StartSession(
            practice=user.practice,
            actor=user.id,
            therapist=user.id,
            client=body.client,
            room=body.room,
            modality=body.modality or "in_person",
            billed_codes=tuple(body.billed_codes),
        )
    outcome = perform(state, command)
    assert isinstance(outcome.record, Session)
    response.headers["Location"] = f"/api/v1/sessions/{outcome.record.id}"
    return session_json(outcome.record, [], state.now())


@router.get("/sessions/{session_id}")
def read_session(session_id: str, user: ApiUser, state: State) -> dict[str, Any]:
    """A session with its exits, gross and net minutes (and concerns, for supervisors)."""
    require(user, "session.read")
    view = session_view(state, user, session_id)
    record_read(state, "session.read", view.session.id)
    return session_json(view.session, view.exits, state.now(), view.concerns)


@router.post("/sessions/{session_id}/end")
def end_session(session_id: str, user: ApiUser, state: State) -> dict[str, Any]:
    require(user, "session.end")
    perform(
        state,
        EndSession(practice=user.practice, actor=user.id, session=session_id),
        check=lambda records: visible_session(records, user, session_id),
    )
    view = session_view(state, user, session_id)
    return session_json(view.session, view.exits, state.now(), view.concerns)


@router.post("/sessions/{session_id}/exits", status_code=status.HTTP_201_CREATED)
async def declare_exit(
    session_id: str, body: NewExit, user: ApiUser, state: State, response: Response
) -> dict[str, Any]:
    """Step out now, with everything said at the tap."""
    require(user, "exit.declare")
    outcome = await run_in_threadpool(
        perform,
        state,
        DeclareExit(
            practice=user.practice,
            actor=user.id,
            session=session_id,
            reason=body.reason,
            reason_note=body.reason_note,
            client_informed="before_leaving" if body.client_informed else "not_informed",
            explanation=body.explanation,
            safeguards=tuple(body.safeguards),
            expected_minutes=body.expected_minutes,
            client_attended_by=body.client_attended_by,
            ems=body.ems,
            ems_note=body.ems_note,
        ),
        check=lambda records: visible_session(records, user, session_id),
    )
    assert isinstance(outcome.record, Exit)
    response.headers["Location"] = f"/api/v1/exits/{outcome.record.id}"
    return exit_json(outcome.record)
