"""Helpers for the page tests: sign in through the login form and the second step (the code
of the account's authenticator), read a page's CSRF token, and walk the therapist's forms
(start a session, step out, come back)."""

import re

from fastapi.testclient import TestClient
from httpx import Response

from tests.web.conftest import PASSWORD, Web, authenticator

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def browser(web: Web) -> TestClient:
    """Another browser (its own cookies) on the same app."""
    return TestClient(web.app, base_url="http://127.0.0.1")


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form and the code step; returns the session's CSRF token."""
    app = client.app.state  # type: ignore[attr-defined]
    authenticator(app.stepout, app.practices, username)  # set up before the first sign-in
    form = client.get("/login")
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    if r.headers["location"].startswith("/login/code"):
        r = enter_code(client, username, r.headers["location"])
    return csrf_of(client.get(r.headers["location"]).text)


def enter_code(client: TestClient, username: str, page: str = "/login/code") -> Response:
    """The second step: the current code of the account's authenticator (a redirect)."""
    form = client.get(page)
    assert form.status_code == 200, form.text
    app = client.app.state  # type: ignore[attr-defined]
    code = authenticator(app.stepout, app.practices, username).code(app.stepout.now)
    r = client.post(
        "/login/code", data={"code": code, "csrf": csrf_of(form.text)}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return r


def start_session(client: TestClient, csrf: str, room: str = "room-1", code: str = "c-0001") -> str:
    r = client.post(
        "/console/sessions",
        data={"client": code, "room": room, "modality": "in_person", "csrf": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def step_out(client: TestClient, csrf: str, session_id: str, **fields: object) -> str:
    data: dict[str, object] = {
        "csrf": csrf,
        "reason": "technical",
        "explanation": "I need to fix the connection; back in a few minutes.",
        "told": "yes",
        "safeguards": ["records_secured", "screen_locked", "door_closed"],
        "expected_minutes": "5",
        **fields,
    }
    r = client.post(f"/console/sessions/{session_id}/exits", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def come_back(client: TestClient, csrf: str, exit_id: str, checked_in: bool = True) -> None:
    r = client.post(
        f"/console/exits/{exit_id}/return",
        data={"csrf": csrf, "checked_in": "yes" if checked_in else "no"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
