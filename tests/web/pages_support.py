"""Helpers for the page tests: sign in through the login form, read a page's CSRF token, and
walk the therapist's forms (start a session, step out, come back)."""

import re

from fastapi.testclient import TestClient

from tests.web.conftest import PASSWORD, Web

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def browser(web: Web) -> TestClient:
    """Another browser (its own cookies) on the same app."""
    return TestClient(web.app, base_url="http://127.0.0.1")


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    form = client.get("/login")
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf_of(client.get(r.headers["location"]).text)


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
