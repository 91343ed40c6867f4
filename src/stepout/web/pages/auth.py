"""Signing in and out. Before sign-in the form is protected by a double-submit token (a cookie
and a hidden field that must match); after it, by the browser session's CSRF token.

The right password gives a browser session only where the practice waives MFA (the demo).
Everywhere else it gives a *pending* sign-in, in its own cookie that is sent to /login/...
only: the second step (`mfa`) turns it into a browser session. Until then no other page opens.
"""

import secrets
from typing import Annotated, Final

from fastapi import Form, Request, Response, status

from stepout.services.audit import FAILED, OK, REFUSED
from stepout.services.signin import SignIn
from stepout.services.throttling import Throttled
from stepout.web import audit
from stepout.web.pages.common import home_for, safe_next
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import redirect, render
from stepout.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CheckedSession,
    State,
    secure_cookies,
    set_session_cookie,
)
from stepout.web.state import AppState

router = page_router()

PENDING_COOKIE: Final = "stepout_mfa"
PENDING_PATH: Final = "/login"

WRONG = "That username and password do not match an account. Please try again."
STALE = "The sign-in form had expired. Please sign in again."
EXPIRED = "That sign-in had expired or ended. Please sign in again."


def login_form(
    request: Request,
    status_code: int = status.HTTP_200_OK,
    *,
    error: str | None = None,
    username: str = "",
    next_path: str | None = None,
) -> Response:
    """The sign-in page with a fresh pre-login token in its cookie and its hidden field."""
    state: AppState = request.app.state.stepout
    token = secrets.token_urlsafe(24)
    context = {
        "login_csrf": token,
        "error": error,
        "username": username,
        "next": next_path,
        "waived": state.accounts.signin.waived_practices(),  # the demo's: said on the page
    }
    response = render(request, "login.html", context, status_code)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        secure=secure_cookies(request),
        samesite="strict",
        path="/login",
    )
    return response


def client_address(request: Request) -> str:
    """Where the request came from, for throttling per address."""
    return request.client.host if request.client is not None else ""


def set_pending_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        PENDING_COOKIE,
        token,
        httponly=True,
        secure=secure_cookies(request),
        samesite="strict",
        path=PENDING_PATH,
    )


def signed_in(request: Request, signed: SignIn, next_path: str | None) -> Response:
    """The browser session begins: its cookie, and on to `next` or the role's start page."""
    audit.login_event(request.app.state.stepout, "login.succeeded", OK, signed.user)
    response = redirect(next_path or home_for(signed.user))
    set_session_cookie(request, response, signed.token)
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
    return response


@router.get("/")
def root(request: Request, state: State) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    found = None if token is None else state.accounts.web_session(token)
    return redirect("/login" if found is None else home_for(found.user))


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return login_form(request, next_path=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    state: State,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    next_path = safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not csrf or not secrets.compare_digest(cookie.encode(), csrf.encode()):
        return login_form(
            request, status.HTTP_403_FORBIDDEN, error=STALE, username=username, next_path=next_path
        )
    try:
        signed = state.accounts.sign_in(username.strip(), password, client_address(request))
    except Throttled as e:
        audit.login_event(state, "login.throttled", REFUSED, state.accounts.user(username.strip()))
        return login_form(
            request,
            status.HTTP_429_TOO_MANY_REQUESTS,
            error=str(e),
            username=username,
            next_path=next_path,
        )
    if signed is None:
        audit.login_event(state, "login.failed", FAILED, state.accounts.user(username.strip()))
        return login_form(
            request,
            status.HTTP_401_UNAUTHORIZED,
            error=WRONG,
            username=username,
            next_path=next_path,
        )
    if signed.second_step is None:  # MFA waived (the demo practice)
        response = signed_in(request, signed, next_path)
    else:
        query = "" if next_path is None else f"?next={_quoted(next_path)}"
        audit.login_event(state, "login.password_accepted", OK, signed.user)
        response = redirect(f"/login/{signed.second_step}{query}")
        set_pending_cookie(request, response, signed.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, state: State, session: CheckedSession) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        state.accounts.sign_out(token)
    audit.record(state, "logout")
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _quoted(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
