"""The therapist's console: today's sessions, what still needs signing, starting a session,
a session's page (step out, end)."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Request, Response, status
from sqlalchemy import Connection, select

from stepout.adapters.db.tables import AmendmentRow
from stepout.domain import timeline
from stepout.domain.accounts import Room, User
from stepout.domain.commands import EndSession, StartSession
from stepout.domain.facetime import gross_minutes, net_minutes
from stepout.domain.instants import day_bounds
from stepout.domain.permissions import allowed
from stepout.domain.protocol import ProtocolError
from stepout.domain.records import Exit, Session
from stepout.domain.schedule import Appointment
from stepout.web.actions import perform
from stepout.web.audit import record_read
from stepout.web.errors import protocol_status
from stepout.web.pages import wording
from stepout.web.pages.common import staff, today_in, zone_of
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import redirect, render
from stepout.web.reading import check_session, session_view
from stepout.web.security import CheckedSession, PageSession, State, require
from stepout.web.state import AppState

router = page_router()


@dataclass(frozen=True, slots=True)
class Today:
    sessions: list[Session]
    to_sign: list[tuple[Exit, Session]]
    open_exit: Exit | None
    rooms: list[Room]
    appointments: list[tuple[Appointment, bool]]  # today's, by planned start; started or not


def read_today(state: AppState, user: User, zone: str) -> Today:
    start, end = day_bounds(today_in(zone, state.now()), zone)
    with state.db.uow(read_only=True) as uow:
        records = uow.records
        sessions = records.sessions_of_therapist(user.practice, user.id, start, end)
        unsigned = records.exits_to_sign(user.practice, user.id)
        owners = records.sessions({x.session for x in unsigned})
        open_exit = records.open_exit_of_therapist(user.practice, user.id)
        rooms = uow.accounts.rooms(user.practice)
        planned = records.appointments_of_therapist(user.practice, user.id, start, end)
    to_sign = [(x, owners[x.session]) for x in unsigned if x.session in owners]
    return Today(sessions, to_sign, open_exit, rooms, planned)


def console_page(
    request: Request,
    state: AppState,
    session: PageSession,
    status_code: int = status.HTTP_200_OK,
    *,
    error: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    zone = zone_of(state, session.user.practice)
    today = read_today(state, session.user, zone)
    day = today_in(zone, state.now()).isoformat()
    shown = len(today.sessions) + len(today.to_sign) + len(today.appointments)
    record_read(state, "session.list", day, count=shown)
    context = staff(
        session,
        zone,
        today=today,
        error=error,
        form=form or {"client": "", "room": "", "modality": "in_person", "codes": []},
        to_classify=[(x, s) for x, s in today.to_sign if x.source == "sensor" and not x.reason],
        words=wording,
        now=state.now(),
    )
    return render(request, "console.html", context, status_code)


@router.get("/console")
def console(request: Request, state: State, session: PageSession) -> Response:
    require(session.user, "session.start")
    return console_page(request, state, session)


@router.post("/console/sessions")
def start_session(
    request: Request,
    state: State,
    session: CheckedSession,
    client: Annotated[str, Form(max_length=200)] = "",
    room: Annotated[str, Form(max_length=200)] = "",
    modality: Annotated[str, Form(max_length=40)] = "in_person",
    billed_codes: Annotated[list[str] | None, Form()] = None,
    appointment: Annotated[str | None, Form(max_length=128)] = None,
) -> Response:
    user = session.user
    require(user, "session.start")
    codes = [c for c in (billed_codes or []) if c]
    form = {"client": client, "room": room, "modality": modality, "codes": codes}

    def refuse(message: str, code: int = status.HTTP_422_UNPROCESSABLE_CONTENT) -> Response:
        return console_page(request, state, session, code, error=message, form=form)

    if appointment:
        planned = StartSession(
            practice=user.practice, actor=user.id, therapist=user.id, appointment=appointment
        )
        try:
            outcome = perform(state, planned)
        except ProtocolError as e:
            return refuse(e.message, protocol_status(e))
        return redirect(f"/console/sessions/{outcome.record.id}")

    if not client.strip():
        return refuse("Enter the client's code.")
    with state.db.uow(read_only=True) as uow:
        known_room = uow.accounts.room(user.practice, room) is not None
    if not known_room:
        return refuse("Choose one of the practice's rooms.")
    command = StartSession(
        practice=user.practice,
        actor=user.id,
        therapist=user.id,
        client=client.strip(),
        room=room,
        modality=modality,
        billed_codes=tuple(codes),
    )
    try:
        outcome = perform(state, command)
    except ProtocolError as e:
        return refuse(e.message, protocol_status(e))
    return redirect(f"/console/sessions/{outcome.record.id}")


def session_page(
    request: Request,
    state: AppState,
    session: PageSession,
    session_id: str,
    status_code: int = status.HTTP_200_OK,
    *,
    error: str | None = None,
) -> Response:
    user = session.user
    require(user, "session.read")
    view = session_view(state, user, session_id)
    s = view.session
    record_read(state, "session.read", s.id)
    zone = zone_of(state, user.practice)
    now = state.now()
    end = s.end if s.end is not None else max(now, s.start)
    spans = [(x.left_at, x.returned_at) for x in view.exits]
    open_exit = next((x for x in view.exits if x.returned_at is None), None)
    own = s.therapist == user.id and allowed(user, "exit.declare")
    with state.db.uow(read_only=True) as uow:
        out_elsewhere = None
        if own and s.in_progress:
            out_elsewhere = uow.records.open_exit_of_therapist(user.practice, user.id)
        amended = exit_amendments(uow.connection, [x.id for x in view.exits])
    context = staff(
        session,
        zone,
        s=s,
        exits=view.exits,
        gross=gross_minutes(s.start, end),
        net=net_minutes(s.start, end, spans),
        open_exit=open_exit or out_elsewhere,
        can_act=own and s.in_progress,
        words=wording,
        error=error,
        # Whoever may see the session may see its exits' pages, whose addendum quotes what the
        # client was told: the timeline shows it to the same readers.
        timeline=timeline.build(s, view.exits, now, amendments=amended),
        current_exit=None,
    )
    return render(request, "session.html", context, status_code)


def exit_amendments(conn: Connection, exit_ids: list[str]) -> dict[str, list[int]]:
    """When each of the exits was amended (ids and times only: no free text is read)."""
    out: dict[str, list[int]] = {}
    if not exit_ids:
        return out
    A = AmendmentRow
    stmt = (
        select(A.subject, A.at_us)
        .where(A.entity == "exit", A.subject.in_(exit_ids))
        .order_by(A.at_us, A.seq)
    )
    for subject, at in conn.execute(stmt):
        out.setdefault(subject, []).append(at)
    return out


@router.get("/console/sessions/{session_id}")
def read_session(request: Request, state: State, session: PageSession, session_id: str) -> Response:
    return session_page(request, state, session, session_id)


@router.post("/console/sessions/{session_id}/end")
def end_session(
    request: Request, state: State, session: CheckedSession, session_id: str
) -> Response:
    user = session.user
    require(user, "session.end")
    check_session(state, user, session_id)
    try:
        perform(state, EndSession(practice=user.practice, actor=user.id, session=session_id))
    except ProtocolError as e:
        return session_page(
            request, state, session, session_id, protocol_status(e), error=e.message
        )
    return redirect(f"/console/sessions/{session_id}")
