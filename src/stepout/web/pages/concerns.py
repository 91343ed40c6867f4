"""A client's private link to raise a concern about a session: no sign-in; the link's keyed
code is the credential (a wrong one is "not found"). The form is protected by a double-submit
token. Nothing is stored but the concern itself, and nothing about the session is shown."""

import secrets
from typing import Annotated, Final

from fastapi import Form, HTTPException, Request, Response, status

from stepout.adapters.db import tenancy
from stepout.domain.commands import RaiseConcern
from stepout.domain.protocol import ProtocolError
from stepout.domain.records import Session
from stepout.services.credentials import concern_code_matches
from stepout.web.actions import perform
from stepout.web.errors import protocol_status
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import redirect, render
from stepout.web.security import State, enter_practice, secure_cookies
from stepout.web.state import AppState

router = page_router()

COOKIE: Final = "stepout_concern_csrf"
LIMIT: Final = 2000
NOT_VALID: Final = "This link is not valid. Please check it, or ask the practice for help."


def linked_session(state: AppState, session_id: str, code: str) -> tuple[Session, str]:
    """The session the link names and the practice's emergency advice; 404 otherwise."""
    if len(code) > 100 or not concern_code_matches(state.keys.link_key, session_id, code):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_VALID)
    # The link is the credential: it names a session of some practice, read across them;
    # the rest of the request is that practice's.
    with state.db.uow(read_only=True, scope=tenancy.ALL) as uow:
        s = uow.records.session(session_id)
    if s is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_VALID)
    enter_practice(s.practice)
    with state.db.uow(read_only=True) as uow:
        emergency = uow.accounts.help_text(s.practice).emergency
    return s, emergency


def concern_form(
    request: Request,
    emergency: str,
    status_code: int = status.HTTP_200_OK,
    *,
    words: str = "",
    error: str | None = None,
) -> Response:
    token = secrets.token_urlsafe(24)
    context = {
        "form_csrf": token,
        "words": words,
        "error": error,
        "emergency": emergency,
        "limit": LIMIT,
        "action": request.url.path,
    }
    response = render(request, "concern.html", context, status_code)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        secure=secure_cookies(request),
        samesite="strict",
        path="/c/",
    )
    return response


@router.get("/c/{session_id}/{code}")
def concern_page(
    request: Request, state: State, session_id: str, code: str, sent: str = ""
) -> Response:
    _, emergency = linked_session(state, session_id, code)
    if sent == "1":
        return render(request, "concern_thanks.html", {"emergency": emergency})
    return concern_form(request, emergency)


@router.post("/c/{session_id}/{code}")
def raise_concern(
    request: Request,
    state: State,
    session_id: str,
    code: str,
    words: Annotated[str, Form(max_length=20_000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    s, emergency = linked_session(state, session_id, code)
    cookie = request.cookies.get(COOKIE, "")
    if not csrf or not secrets.compare_digest(cookie.encode(), csrf.encode()):
        return concern_form(
            request,
            emergency,
            status.HTTP_403_FORBIDDEN,
            words=words,
            error="The form had expired. Please press Send again.",
        )
    message = words.strip()
    if not message or len(message) > LIMIT:
        error = (
            "Please write your message before sending."
            if not message
            else f"Please shorten your message to {LIMIT} characters."
        )
        return concern_form(
            request, emergency, status.HTTP_422_UNPROCESSABLE_CONTENT, words=words, error=error
        )
    command = RaiseConcern(practice=s.practice, actor=None, session=s.id, text=message)
    try:
        perform(state, command)
    except ProtocolError as e:
        return concern_form(request, emergency, protocol_status(e), words=words, error=e.message)
    response = redirect(f"{request.url.path}?sent=1")
    response.delete_cookie(COOKIE, path="/c/")
    return response
