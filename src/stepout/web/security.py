"""Who is asking: API users by Bearer token, room displays by room token (Bearer or
`?token=`), browsers by session cookie with a CSRF token on every form. Failures say what is
missing, never whose token or which record."""

import ipaddress
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from stepout.domain.accounts import Room, User
from stepout.domain.permissions import Forbidden, authorize
from stepout.services.ports import WebSession
from stepout.web.state import AppState, app_state

SESSION_COOKIE: Final = "stepout_session"
LOGIN_CSRF_COOKIE: Final = "stepout_login_csrf"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"

State = Annotated[AppState, Depends(app_state)]


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
    return user


ApiUser = Annotated[User, Depends(api_user)]


def room_viewer(room: str, request: Request, state: State) -> Room:
    """The room a display token opens; 401 without a valid one, 403 for another room."""
    token = bearer_token(request) or request.query_params.get("token")
    if not token:
        raise _unauthorized("A room token is required (Authorization: Bearer or ?token=).")
    found = state.accounts.room_of_token(token)
    if found is None:
        raise _unauthorized("The room token is not valid.")
    if found.id != room:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This token opens another room's display.")
    return found


RoomViewer = Annotated[Room, Depends(room_viewer)]


def require(user: User, operation: str) -> None:
    try:
        authorize(user, operation)
    except Forbidden as e:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(e)) from None


class LoginRequired(Exception):
    """A page needs a signed-in browser; the app redirects to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def page_session(request: Request, state: State) -> WebSession:
    token = request.cookies.get(SESSION_COOKIE)
    found = None if token is None else state.accounts.web_session(token)
    if found is None:
        raise LoginRequired(request.url.path)
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
