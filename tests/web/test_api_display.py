"""A room's display through the API, for its room token: the states a client sees through a
session, the concern link's window, and who may look."""

from typing import Any

import httpx
import pytest

from stepout.web.links import concern_path
from tests.web.conftest import FakeClock, Web
from tests.web.test_api_support import API, EXIT, SQLITE_ONLY, come_back, end, start, step_out

HELP = {
    "call_button": "Press the call button by the door.",
    "reception": "Reception can be reached on the room phone.",
    "emergency": "In an emergency, call 911.",
}


def look(web: Web, room: str = "room-1", token: str | None = None) -> httpx.Response:
    token = web.a.room_tokens[room] if token is None else token
    return web.client.get(
        f"{API}/rooms/{room}/display", headers={"Authorization": f"Bearer {token}"}
    )


def shown(web: Web, room: str = "room-1") -> dict[str, Any]:
    r = look(web, room)
    assert r.status_code == 200, r.text
    return r.json()


def concern_url(web: Web, session: str) -> str:
    return "http://127.0.0.1" + concern_path(web.state.keys.link_key, session)


def test_the_display_through_a_session(web_clocked: Web, clock: FakeClock) -> None:
    assert shown(web_clocked) == {"room": "room-1", "state": "idle", "concern_url": None}

    sid = start(web_clocked, codes=("90834",))["id"]
    assert shown(web_clocked) == {
        "room": "room-1",
        "state": "in_session",
        "since": "2026-03-02T15:00:00+00:00",
        "concern_url": concern_url(web_clocked, sid),
    }

    clock.advance(minutes=20)
    xid = step_out(web_clocked, sid, expected_minutes=5)["id"]
    clock.advance(minutes=2)
    assert shown(web_clocked) == {
        "room": "room-1",
        "state": "away",
        "left_at": "2026-03-02T15:20:00+00:00",
        "explanation": EXIT["explanation"],
        "expected_back": "2026-03-02T15:25:00+00:00",
        "help": HELP,
        "concern_url": concern_url(web_clocked, sid),
    }
    assert shown(web_clocked, "room-2")["state"] == "idle"  # the other room is untouched

    come_back(web_clocked, xid)
    assert shown(web_clocked)["state"] == "in_session"

    clock.advance(minutes=30)
    end(web_clocked, sid)
    after = {"room": "room-1", "state": "idle", "concern_url": concern_url(web_clocked, sid)}
    assert shown(web_clocked) == after
    clock.advance(minutes=15)
    assert shown(web_clocked) == after  # the link stays up for 15 minutes after the end
    clock.advance(seconds=1)
    assert shown(web_clocked) == {"room": "room-1", "state": "idle", "concern_url": None}


@SQLITE_ONLY
def test_a_new_session_takes_over_the_concern_link(web_clocked: Web, clock: FakeClock) -> None:
    first = start(web_clocked)["id"]
    clock.advance(minutes=50)
    end(web_clocked, first)
    clock.advance(minutes=5)
    second = start(web_clocked, "a-ther2")["id"]
    assert shown(web_clocked)["concern_url"] == concern_url(web_clocked, second)
    clock.advance(minutes=1)
    end(web_clocked, second, "a-ther2")
    assert shown(web_clocked)["concern_url"] == concern_url(web_clocked, second)


@SQLITE_ONLY
def test_no_expected_return_is_shown_as_none(web_clocked: Web) -> None:
    sid = start(web_clocked)["id"]
    step_out(web_clocked, sid, expected_minutes=None)
    assert shown(web_clocked)["expected_back"] is None


def test_the_display_shows_nothing_about_the_client(web: Web) -> None:
    sid = start(web)["id"]
    step_out(web, sid)
    r = look(web)
    body = r.json()
    assert set(body) == {
        "room",
        "state",
        "left_at",
        "explanation",
        "expected_back",
        "help",
        "concern_url",
    }
    for private in ("c-0001", "a-ther", "technical"):
        assert private not in r.text


def test_the_token_in_the_query_opens_the_display(web: Web) -> None:
    token = web.a.room_tokens["room-2"]
    r = web.client.get(f"{API}/rooms/room-2/display", params={"token": token})
    assert (r.status_code, r.json()["state"]) == (200, "idle")


def test_a_practices_room_token_sees_its_own_practices_room_only(web: Web) -> None:
    start(web, "b-ther", "room-1")  # practice pb's room-1 is busy; pa's is not
    assert shown(web)["state"] == "idle"
    r = web.client.get(f"{API}/rooms/room-1/display", params={"token": web.b.room_tokens["room-1"]})
    assert r.json()["state"] == "in_session"


@pytest.mark.parametrize("path", ["display", "display/events"])
def test_a_token_for_another_room_is_forbidden(web: Web, path: str) -> None:
    r = web.client.get(f"{API}/rooms/room-1/{path}", params={"token": web.a.room_tokens["room-2"]})
    assert r.status_code == 403
    assert "another room" in r.json()["message"]


@pytest.mark.parametrize("path", ["display", "display/events"])
def test_no_token_or_a_wrong_one_is_unauthorized(web: Web, path: str) -> None:
    url = f"{API}/rooms/room-1/{path}"
    assert web.client.get(url).status_code == 401
    assert web.client.get(url, params={"token": "sr_wrong"}).status_code == 401
    staff = web.a.auth("a-admin")  # a staff API token is not a room token
    assert web.client.get(url, headers=staff).status_code == 401


def test_a_revoked_room_token_is_unauthorized(web: Web) -> None:
    web.state.accounts.revoke_room_tokens("room-1", "pa")
    assert look(web).status_code == 401
