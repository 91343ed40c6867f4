"""Signing in and out. Before sign-in the form is protected by a double-submit token (a cookie
and a hidden field that must match); after it, by the browser session's CSRF token."""

import secrets
from typing import Annotated

from fastapi import Form, Request, Response, status

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

router = page_router()

WRONG = "That username and password do not match an account. Please try again."
STALE = "The sign-in form had expired. Please sign in again."


def login_form(
    request: Request,
    status_code: int = status.HTTP_200_OK,
    *,
    error: str | None = None,
    username: str = "",
    next_path: str | None = None,
) -> Response:
    """The sign-in page with a fresh pre-login token in its cookie and its hidden field."""
    token = secrets.token_urlsafe(24)
    context = {"login_csrf": token, "error": error, "username": username, "next": next_path}
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
    signed = state.accounts.sign_in(username.strip(), password)
    if signed is None:
        return login_form(
            request,
            status.HTTP_401_UNAUTHORIZED,
            error=WRONG,
            username=username,
            next_path=next_path,
        )
    response = redirect(next_path or home_for(signed.user))
    set_session_cookie(request, response, signed.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, state: State, session: CheckedSession) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        state.accounts.sign_out(token)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
