"""Reads for the web edge, limited to what the asking user may see: records of their own
practice, and for a therapist only their own sessions. Anything else is "not found", so that
a refused id and a missing one look the same."""

from dataclasses import dataclass

from fastapi import HTTPException, status

from stepout.domain.accounts import User
from stepout.domain.permissions import allowed, sees_only_own_sessions
from stepout.domain.records import Concern, Exit, Session
from stepout.services.ports import Records
from stepout.web.state import AppState


@dataclass(frozen=True, slots=True)
class SessionView:
    session: Session
    exits: list[Exit]
    concerns: list[Concern] | None  # None: the user may not read concerns


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"No such {what} in this practice.")


def may_see(user: User, session: Session | None) -> bool:
    if session is None or session.practice != user.practice:
        return False
    return not (sees_only_own_sessions(user) and session.therapist != user.id)


def visible_session(records: Records, user: User, session_id: str) -> Session:
    session = records.session(session_id)
    if not may_see(user, session):
        raise not_found("session")
    assert session is not None
    return session


def visible_exit(records: Records, user: User, exit_id: str) -> tuple[Exit, Session]:
    x = records.exit(exit_id)
    session = None if x is None else records.session(x.session)
    if x is None or not may_see(user, session):
        raise not_found("exit")
    assert session is not None
    return x, session


def session_view(state: AppState, user: User, session_id: str) -> SessionView:
    with state.db.uow(read_only=True) as uow:
        session = visible_session(uow.records, user, session_id)
        exits = uow.records.exits_of_session(session.id)
        concerns = (
            uow.records.concerns_of_session(session.id) if allowed(user, "concerns.read") else None
        )
    return SessionView(session, exits, concerns)


def check_exit(state: AppState, user: User, exit_id: str) -> Session:
    """404 unless the user may see the exit; returns its session."""
    with state.db.uow(read_only=True) as uow:
        return visible_exit(uow.records, user, exit_id)[1]


def check_session(state: AppState, user: User, session_id: str) -> Session:
    with state.db.uow(read_only=True) as uow:
        return visible_session(uow.records, user, session_id)
