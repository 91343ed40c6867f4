"""The second step of signing in: a code from the authenticator app (or a recovery code), or,
for an account with no factor yet, enrolment: a QR code of the otpauth:// URI and the key as
text, confirmed with a first code, then the ten recovery codes, shown once.

These pages answer only to a pending sign-in (its cookie is sent to /login/... alone); its
forms carry the pending sign-in's CSRF token.
"""

import secrets
from typing import Annotated, Final

import segno
from fastapi import Form, Request, Response, status

from stepout.services.audit import FAILED, OK, REFUSED
from stepout.services.signin import Pending, SignInExpired
from stepout.services.throttling import Throttled
from stepout.web import audit
from stepout.web.pages.auth import (
    EXPIRED,
    PENDING_COOKIE,
    PENDING_PATH,
    client_address,
    login_form,
    signed_in,
)
from stepout.web.pages.common import home_for, nav_for, safe_next
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import redirect, render
from stepout.web.security import State, set_session_cookie
from stepout.web.state import AppState

router = page_router()

WRONG_CODE: Final = (
    "That code is not right, or it was used already. Please enter the code the app shows now."
)
WRONG_FIRST_CODE: Final = (
    "That code does not match. Check that the app shows a code for Stepout and enter the "
    "code it shows now."
)
STALE_FORM: Final = "The form had expired. Please try again."

Code = Annotated[str, Form(max_length=40)]
Csrf = Annotated[str, Form(max_length=200)]
Next = Annotated[str, Form(max_length=500)]


def _pending(request: Request, state: AppState) -> tuple[str, Pending] | None:
    token = request.cookies.get(PENDING_COOKIE)
    found = None if not token else state.accounts.signin.pending(token)
    return None if token is None or found is None else (token, found)


def _start_again(request: Request, next_path: str | None) -> Response:
    response = login_form(request, status.HTTP_401_UNAUTHORIZED, error=EXPIRED, next_path=next_path)
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
    return response


def _throttled(request: Request, error: Throttled, next_path: str | None) -> Response:
    response = login_form(
        request, status.HTTP_429_TOO_MANY_REQUESTS, error=str(error), next_path=next_path
    )
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
    return response


def _same(sent: str, expected: str) -> bool:
    return bool(sent) and secrets.compare_digest(sent.encode(), expected.encode())


def _code_page(
    request: Request,
    pending: Pending,
    next_path: str | None,
    status_code: int = status.HTTP_200_OK,
    error: str | None = None,
) -> Response:
    context = {
        "username": pending.user.username,
        "pending_csrf": pending.csrf,
        "next": next_path,
        "error": error,
    }
    return render(request, "mfa_code.html", context, status_code)


@router.get("/login/code")
def code_page(request: Request, state: State, next: str | None = None) -> Response:
    next_path = safe_next(next)
    found = _pending(request, state)
    if found is None:
        return redirect("/login")
    if found[1].second_step == "enrol":
        return redirect("/login/enrol")
    return _code_page(request, found[1], next_path)


@router.post("/login/code")
def code(
    request: Request, state: State, code: Code = "", csrf: Csrf = "", next: Next = ""
) -> Response:
    next_path = safe_next(next)
    found = _pending(request, state)
    if found is None:
        return _start_again(request, next_path)
    token, pending = found
    if not _same(csrf, pending.csrf):
        return _code_page(request, pending, next_path, status.HTTP_403_FORBIDDEN, STALE_FORM)
    try:
        signed = state.accounts.signin.second_factor(token, code, client_address(request))
    except Throttled as e:
        audit.login_event(state, "login.throttled", REFUSED, pending.user)
        return _throttled(request, e, next_path)
    except SignInExpired:
        return _start_again(request, next_path)
    if signed is None:
        audit.login_event(state, "login.failed", FAILED, pending.user)
        return _code_page(request, pending, next_path, status.HTTP_401_UNAUTHORIZED, WRONG_CODE)
    return signed_in(request, signed, next_path)


def _qr_data_uri(uri: str) -> str:
    qr = segno.make(uri, error="m")
    data_uri: str = qr.svg_data_uri(scale=5, border=2, dark="#16323f", light="#ffffff")
    return data_uri


def _enrol_page(
    request: Request,
    state: AppState,
    token: str,
    pending: Pending,
    next_path: str | None,
    status_code: int = status.HTTP_200_OK,
    error: str | None = None,
) -> Response:
    enrolment = state.accounts.signin.enrolment(token)
    if enrolment is None:  # a factor is there already: the code step
        return redirect("/login/code")
    secret = enrolment.secret
    context = {
        "username": pending.user.username,
        "pending_csrf": pending.csrf,
        "next": next_path,
        "error": error,
        "qr": _qr_data_uri(enrolment.uri),
        "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    }
    return render(request, "mfa_enrol.html", context, status_code)


@router.get("/login/enrol")
def enrol_page(request: Request, state: State, next: str | None = None) -> Response:
    next_path = safe_next(next)
    found = _pending(request, state)
    if found is None:
        return redirect("/login")
    token, pending = found
    if pending.second_step == "code":
        return redirect("/login/code")
    try:
        return _enrol_page(request, state, token, pending, next_path)
    except SignInExpired:
        return _start_again(request, next_path)


@router.post("/login/enrol")
def enrol(
    request: Request, state: State, code: Code = "", csrf: Csrf = "", next: Next = ""
) -> Response:
    next_path = safe_next(next)
    found = _pending(request, state)
    if found is None:
        return _start_again(request, next_path)
    token, pending = found
    if pending.second_step == "code":  # a factor is there already
        return redirect("/login/code")
    try:
        if not _same(csrf, pending.csrf):
            return _enrol_page(
                request, state, token, pending, next_path, status.HTTP_403_FORBIDDEN, STALE_FORM
            )
        done = state.accounts.signin.confirm_enrolment(token, code, client_address(request))
        if done is None:
            audit.login_event(state, "login.failed", FAILED, pending.user)
            return _enrol_page(
                request,
                state,
                token,
                pending,
                next_path,
                status.HTTP_401_UNAUTHORIZED,
                WRONG_FIRST_CODE,
            )
    except Throttled as e:
        audit.login_event(state, "login.throttled", REFUSED, pending.user)
        return _throttled(request, e, next_path)
    except SignInExpired:
        return _start_again(request, next_path)
    signed, codes = done
    audit.login_event(state, "login.succeeded", OK, signed.user)
    context = {
        "user": signed.user,
        "csrf": signed.csrf,
        "nav": nav_for(signed.user),
        "codes": codes,
        "continue_to": next_path or home_for(signed.user),
    }
    response = render(request, "mfa_recovery.html", context)
    set_session_cookie(request, response, signed.token)
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
    return response
