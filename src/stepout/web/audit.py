"""The audit trail at the web edge: who is asking and from where, for every request.

`AuditRequests` (ASGI middleware) starts each request's `RequestAudit`: its origin (the
client's address, as uvicorn's proxy-headers handling gives it) and channel (`api`, `page` or
`display`). The credential dependencies of `stepout.web.security` name the caller
(`identify`). Then each request writes one audit record:

- a write of health data: `stepout.web.actions.perform` passes the caller to the workflow,
  which records the write in the ledger's transaction; a refused or failed write is recorded
  on its own (`record_failure`);
- a read of health data: the route calls `record_read` after reading and before answering;
  if the record cannot be written, the request fails and the data is not sent;
- a refusal (401, 403, or 404 from a route: a record the caller may not see looks like a
  missing one), and a page that sent the browser to the login page: the middleware records
  `access.refused` as the response starts, unless the route recorded something already.

Anything else (static files, /healthz, the login form, the live "changed" stream) writes no
audit record: see docs/architecture.md, "The audit trail".
"""

import logging
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Final

from fastapi import HTTPException
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepout import logs
from stepout.adapters.db import tenancy
from stepout.domain.accounts import Room, User
from stepout.domain.commands import Command
from stepout.domain.protocol import ProtocolError
from stepout.services.audit import (
    ANONYMOUS,
    FAILED,
    OK,
    REFUSED,
    AuditRecord,
    Caller,
    Channel,
    Outcome,
    action_of,
    clean_target,
    room_actor,
    target_of,
    write_alone,
)
from stepout.web.state import AppState

log = logging.getLogger(__name__)

REFUSALS: Final = frozenset({401, 403, 404})
TARGET_PARAMS: Final = ("exit_id", "session_id", "concern_id", "room")
UNKNOWN_ORIGIN: Final = "unknown"


@dataclass(slots=True)
class RequestAudit:
    """One request's caller, and whether its audit record has been written."""

    origin: str
    channel: Channel
    actor: str = ANONYMOUS
    practice: str | None = None
    recorded: bool = False
    login_required: bool = False  # a page sent the browser to the login page

    @property
    def caller(self) -> Caller:
        return Caller(self.actor, self.practice, self.origin, self.channel)


_current: ContextVar[RequestAudit | None] = ContextVar("stepout_request_audit", default=None)


def current() -> RequestAudit:
    """The request's audit context (outside a request, e.g. a test calling a helper
    directly: a fresh anonymous one)."""
    found = _current.get()
    if found is None:
        found = RequestAudit(UNKNOWN_ORIGIN, "api")
        _current.set(found)
    return found


def channel_of(path: str) -> Channel:
    if path.startswith("/display/") or (path.startswith("/api/v1/rooms/") and "/display" in path):
        return "display"
    return "api" if path.startswith("/api/") else "page"


def identify(user: User) -> None:
    """The request's caller is `user` (the credential dependencies call this)."""
    ctx = current()
    ctx.actor, ctx.practice = user.id, user.practice
    logs.bind(user=user.id, practice=user.practice)


def identify_room(room: Room) -> None:
    """The request's caller is a room's display (its room token)."""
    ctx = current()
    ctx.actor, ctx.practice = room_actor(room.practice, room.id), room.practice
    logs.bind(room=room.id, practice=room.practice)


def login_required() -> None:
    """A page refused a browser with no live session (it is sent to the login page)."""
    current().login_required = True


def write(state: AppState, record: AuditRecord) -> None:
    """Write `record` in a transaction of its own (raises if it cannot). The audit trail spans
    practices (one chain), so the transaction is not confined to the caller's practice; it
    touches the audit trail only."""
    with tenancy.scope(tenancy.ALL):
        write_alone(state.db.uow, record)


def record_read(
    state: AppState, action: str, target: str | None = None, *, count: int | None = None
) -> None:
    """Record this request's read (once per request: a second call, or one after the request
    recorded a write, adds nothing). Call it after reading, before answering."""
    ctx = current()
    if ctx.recorded:
        return
    write(state, ctx.caller.record(action, target, count=count))
    ctx.recorded = True


def record(
    state: AppState,
    action: str,
    target: str | None = None,
    *,
    outcome: Outcome = OK,
    actor: str | None = None,
    practice: str | None = None,
) -> None:
    """Record an event of this request that is not a read (a sign-in, a sign-out), naming the
    actor and practice when the request's credential does not (a sign-in has none yet)."""
    ctx = current()
    caller = replace(ctx.caller, actor=actor or ctx.actor)
    write(state, caller.record(action, target, outcome=outcome, practice=practice))
    ctx.recorded = True


def login_event(state: AppState, action: str, outcome: Outcome, user: User | None) -> None:
    """A step of signing in (`login.*`): `user` is the account it concerns when known (a wrong
    password for an existing username names it; an unknown username is `anonymous`, with no
    practice). What was typed is never recorded."""
    record(
        state,
        action,
        outcome=outcome,
        actor=None if user is None else user.id,
        practice=None if user is None else user.practice,
    )


def command_caller(command: Command) -> Caller:
    """Who issues `command` in this request: its actor (a user id; a client's concern, which
    has none, is `anonymous`) in its practice, from the request's origin and channel."""
    ctx = current()
    return Caller(command.actor or ctx.actor, command.practice, ctx.origin, ctx.channel)


def outcome_of(error: BaseException) -> Outcome:
    """Refused: the caller may not, or the record is not theirs to see; failed: otherwise."""
    if isinstance(error, HTTPException) and error.status_code in REFUSALS:
        return REFUSED
    if isinstance(error, ProtocolError) and error.code == "not-found":
        return REFUSED
    return FAILED


def record_failure(state: AppState, command: Command, error: BaseException) -> None:
    """Record a write that did not happen (its transaction was rolled back)."""
    caller = command_caller(command)
    _record_undone(state, caller.record(action_of(command), target_of(command)), error)


def record_failed_import(state: AppState, error: BaseException) -> None:
    """Record an import that stored nothing (rejected, or failed)."""
    _record_undone(state, current().caller.record("records.import"), error)


def _record_undone(state: AppState, entry: AuditRecord, error: BaseException) -> None:
    """Record `entry` with the outcome `error` means. If that fails too, it is logged: the
    error the caller sees is the command's own."""
    try:
        write(state, replace(entry, outcome=outcome_of(error)))
    except Exception:
        log.exception("audit.write_failed", extra={"action": entry.action})
        return
    current().recorded = True


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN_ORIGIN


def _target(scope: Scope) -> str | None:
    params = scope.get("path_params") or {}
    for name in TARGET_PARAMS:
        value = params.get(name)
        if isinstance(value, str):
            return clean_target(value)
    return None


def _refused(scope: Scope, ctx: RequestAudit) -> None:
    state: AppState = scope["app"].state.stepout
    write(state, ctx.caller.record("access.refused", _target(scope), outcome=REFUSED))
    ctx.recorded = True


class AuditRequests:
    """ASGI middleware: each request's `RequestAudit`; a refusal no route recorded is recorded
    before its response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = RequestAudit(_client(scope), channel_of(scope.get("path", "")))
        token = _current.set(ctx)

        async def send_checked(message: Message) -> None:
            if message["type"] == "http.response.start" and not ctx.recorded:
                status = message["status"]
                routed = isinstance(scope.get("route"), APIRoute)
                if ctx.login_required or (routed and status in REFUSALS):
                    await run_in_threadpool(_refused, scope, ctx)
            await send(message)

        try:
            await self.app(scope, receive, send_checked)
        finally:
            _current.reset(token)
