"""Who is asking: API users by Bearer token, room displays by room token (Bearer or
`?token=`), browsers by session cookie with a CSRF token on every form. Failures say what is
missing, never whose token or which record.

Sealed tenants: `TenantSeal` starts every request with no practice scope; the dependencies
below resolve the credential (the one read across practices: `credential_units`) and then
enter the caller's practice for the rest of the request (`stepout.adapters.db.tenancy`).
They are async, so that the scope they enter is the request task's own: the sync endpoints
run on worker threads with a copy of it."""

import ipaddress
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import Depends, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from stepout.adapters.db import tenancy
from stepout.domain.accounts import Room, User
from stepout.domain.permissions import Forbidden, authorize
from stepout.services.ports import WebSession
from stepout.web import audit
from stepout.web.state import AppState, app_state

if TYPE_CHECKING:
    from stepout.adapters.db import Database, SqlUnitOfWork

SESSION_COOKIE: Final = "stepout_session"
LOGIN_CSRF_COOKIE: Final = "stepout_login_csrf"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"

State = Annotated[AppState, Depends(app_state)]


class TenantSeal:
    """ASGI middleware: every request starts with no practice scope, whatever the process's
    default (the command line's `serve` and `demo` run with ALL), so that a handler that never
    learns the caller's practice reads nothing (`tenancy.NoTenantScope`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        with tenancy.sealed():
            await self.app(scope, receive, send)


def credential_units(db: "Database") -> Callable[..., "SqlUnitOfWork"]:
    """The units of work of the web's account service (`AppState.accounts`): it resolves
    credentials (tokens, session cookies, usernames: unique across practices) before the
    caller's practice is known, so it reads across practices, and only it. It is never used
    for a practice's records."""
    return partial(db.uow, scope=tenancy.ALL)


def enter_practice(practice: str) -> None:
    """The rest of this request reads and writes `practice`'s records only."""
    tenancy.enter(practice)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def api_user(request: Request, state: State) -> User:
    """The user of the request's API token (401 when missing, unknown or revoked). Async, so
    that a token seen moments ago costs no hop to a worker thread."""
    token = bearer_token(request)
    if token is None:
        raise _unauthorized("An API token is required: Authorization: Bearer <token>.")
    user = state.accounts.known_user(token)
    if user is None:
        user = await run_in_threadpool(state.accounts.user_of_api_token, token)
    if user is None:
        raise _unauthorized("The API token is not valid.")
    enter_practice(user.practice)
    audit.identify(user)
    return user


ApiUser = Annotated[User, Depends(api_user)]


def find_room(room: str, request: Request, state: AppState) -> Room:
    """The room a display token opens; 401 without a valid one, 403 for another room. (Sync,
    for a handler on a worker thread, which then enters the room's practice itself.)"""
    token = bearer_token(request) or request.query_params.get("token")
    if not token:
        raise _unauthorized("A room token is required (Authorization: Bearer or ?token=).")
    found = state.accounts.room_of_token(token)
    if found is None:
        raise _unauthorized("The room token is not valid.")
    if found.id != room:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This token opens another room's display.")
    return found


async def room_viewer(room: str, request: Request, state: State) -> Room:
    """As `find_room`, and the rest of the request is in the room's practice."""
    found = await run_in_threadpool(find_room, room, request, state)
    enter_practice(found.practice)
    audit.identify_room(found)
    return found


RoomViewer = Annotated[Room, Depends(room_viewer)]


async def refused_credential(request: Request) -> HTTPException | None:
    """The 401 that an API request without a valid credential earns, for a request refused
    before its dependencies ran (a body that is not JSON: FastAPI reads the body first), so
    that nobody learns about an operation's input without a credential. None when the route
    takes no credential or the request has a valid one."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    calls = _calls(dependant)
    state: AppState = request.app.state.stepout
    try:
        if api_user in calls:
            await api_user(request, state)
        elif room_viewer in calls:
            await room_viewer(str(request.path_params.get("room", "")), request, state)
    except HTTPException as e:
        return e if e.status_code == status.HTTP_401_UNAUTHORIZED else None
    return None


def _calls(dependant: Any) -> set[Any]:
    found = set()
    for sub in dependant.dependencies:
        found.add(sub.call)
        found |= _calls(sub)
    return found


def require(user: User, operation: str) -> None:
    try:
        authorize(user, operation)
    except Forbidden as e:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(e)) from None


class LoginRequired(Exception):
    """A page needs a signed-in browser; the app redirects to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


async def page_session(request: Request, state: State) -> WebSession:
    """The signed-in browser's session (else the login page), in its user's practice."""
    token = request.cookies.get(SESSION_COOKIE)
    found = None
    if token is not None:
        found = await run_in_threadpool(state.accounts.web_session, token)
    if found is None:
        raise LoginRequired(request.url.path)
    enter_practice(found.user.practice)
    audit.identify(found.user)
    return found


PageSession = Annotated[WebSession, Depends(page_session)]


async def check_csrf(request: Request, session: PageSession) -> WebSession:
    """For every state-changing page request: the form's `csrf` field or the X-CSRF-Token
    header must match the browser session's token."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if sent is None or not _same(sent, session.csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "The form is out of date; reload the page.")
    return session


CheckedSession = Annotated[WebSession, Depends(check_csrf)]


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure except for plain HTTP to a loopback address (a local demo)."""
    if request.url.scheme == "https":
        return True
    host = request.url.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=secure_cookies(request),
        samesite="lax",
        path="/",
    )
