"""Every API route asks who is calling: no token, a wrong or a revoked one is a 401, whatever
the route (the list is read from the OpenAPI document, so a new route is covered the day it is
added)."""

import re

import pytest

from tests.web.conftest import Web
from tests.web.test_api_support import API, call, ok


def api_routes(web: Web) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document, with `x-1` for each path parameter."""
    found = []
    for path, operations in web.app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x-1", path)
        found.extend((method.upper(), concrete) for method in operations)
    return found


def test_the_api_has_the_routes_of_the_issue(web: Web) -> None:
    routes = set(api_routes(web))
    for method, path in [
        ("POST", "/sessions"),
        ("GET", "/sessions/x-1"),
        ("POST", "/sessions/x-1/exits"),
        ("POST", "/exits/x-1/return"),
        ("POST", "/exits/x-1/sign"),
        ("POST", "/sessions/x-1/end"),
        ("POST", "/records"),
        ("GET", "/findings"),
        ("GET", "/rooms/x-1/display"),
        ("GET", "/rooms/x-1/display/events"),
    ]:
        assert (method, API + path) in routes


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer so_not-a-real-token"},
        {"Authorization": "Basic YS1hZG1pbjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "unknown", "not-bearer", "empty"],
)
def test_every_route_refuses_a_caller_without_a_valid_token(web: Web, headers: dict) -> None:
    routes = api_routes(web)
    assert len(routes) >= 20
    for method, path in routes:
        r = web.client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"] == "unauthorized"


def test_a_revoked_api_token_is_refused(web: Web) -> None:
    token_id, token = web.state.accounts.create_api_token("a-super")
    headers = {"Authorization": f"Bearer {token}"}
    assert web.client.get(f"{API}/sessions", headers=headers).status_code == 200
    web.state.accounts.revoke_api_token(token_id)
    assert web.client.get(f"{API}/sessions", headers=headers).status_code == 401


def test_a_disabled_account_may_do_nothing(web: Web) -> None:
    ok(call(web, "GET", "/sessions", "a-ther"))
    web.state.accounts.set_disabled("a-ther", True)
    r = call(web, "POST", "/sessions", "a-ther", json={"client": "c-1", "room": "room-1"})
    assert r.status_code == 401
    assert call(web, "GET", "/sessions", "a-ther").status_code == 401


def test_a_room_token_is_not_an_api_token(web: Web) -> None:
    headers = {"Authorization": f"Bearer {web.a.room_tokens['room-1']}"}
    assert web.client.get(f"{API}/sessions", headers=headers).status_code == 401


def test_the_openapi_document_describes_the_event_stream(web: Web) -> None:
    spec = web.client.get(f"{API}/openapi.json").json()
    events = spec["paths"]["/api/v1/rooms/{room}/display/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    body = spec["paths"]["/api/v1/records"]["post"]["requestBody"]["content"]
    assert "application/x-ndjson" in body
