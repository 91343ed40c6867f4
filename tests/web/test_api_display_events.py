"""The room display's Server-Sent Events against a real server (uvicorn on a loopback port in a
thread): an exit declared through the API reaches the stream within a second, the return too,
what changes with time alone arrives at the next heartbeat, and a closed stream unsubscribes."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from stepout.web.api import display
from stepout.web.app import create_app
from stepout.web.live import room_topic
from stepout.web.state import AppState
from tests.web.conftest import FakeClock, Practice, populate, settings_for
from tests.web.test_api_support import EXIT

EVENTS = "/api/v1/rooms/room-1/display/events"
TOPIC = room_topic("pa", "room-1")


@dataclass
class Served:
    url: str
    state: AppState
    practice: Practice
    clock: FakeClock

    def post(self, path: str, json: Any = None) -> Any:
        r = httpx.post(
            self.url + "/api/v1" + path, json=json, headers=self.practice.auth("a-ther"), timeout=5
        )
        assert r.status_code in (200, 201), r.text
        return r.json()


@contextmanager
def serving(engine_url: str, tmp_path: Path) -> Iterator[Served]:
    clock = FakeClock()
    app = create_app(settings_for(engine_url, tmp_path), clock=clock)
    state: AppState = app.state.stepout
    practice = populate(state, "pa", "a")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start in time"
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", state, practice, clock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def served(engine_url: str, tmp_path: Path) -> Iterator[Served]:
    with serving(engine_url, tmp_path) as s:
        yield s


class Stream:
    """The events of one open stream, read line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()
        self.comments = 0

    def next(self) -> dict[str, Any]:
        """The next `data:` event's JSON (comments and other fields are counted, skipped)."""
        data: list[str] = []
        for line in self._lines:
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif line.startswith(":"):
                self.comments += 1
            elif line == "" and data:
                return orjson.loads("\n".join(data))
        raise AssertionError("the stream ended")


@contextmanager
def stream(served: Served, **params: str) -> Iterator[Stream]:
    params = params or {"token": served.practice.room_tokens["room-1"]}
    timeout = httpx.Timeout(5, read=5)
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("GET", served.url + EVENTS, params=params) as response,
    ):
        assert response.status_code == 200
        yield Stream(response)


def wait_for(condition: Any, seconds: float = 3) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def test_an_exit_and_the_return_reach_the_display_within_a_second(served: Served) -> None:
    sid = served.post("/sessions", {"client": "c-0001", "room": "room-1"})["id"]
    with stream(served) as events:
        assert events.response.headers["content-type"].startswith("text/event-stream")
        assert events.response.headers["cache-control"] == "no-cache"
        assert events.response.headers["x-accel-buffering"] == "no"
        assert events.next()["state"] == "in_session"  # at once, on connect
        assert served.state.hub.subscribers(TOPIC) == 1

        tapped = time.monotonic()
        xid = served.post(f"/sessions/{sid}/exits", EXIT)["id"]
        away = events.next()
        assert time.monotonic() - tapped < 1.0
        assert (away["state"], away["explanation"]) == ("away", EXIT["explanation"])
        assert away["concern_url"].startswith(served.url + f"/c/{sid}/")

        tapped = time.monotonic()
        served.post(f"/exits/{xid}/return", {"checked_in": True})
        back = events.next()
        assert time.monotonic() - tapped < 1.0
        assert back["state"] == "in_session"
    assert wait_for(lambda: served.state.hub.subscribers(TOPIC) == 0)


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_a_stream_sends_only_changes_and_another_rooms_stay_quiet(served: Served) -> None:
    room_2 = {"token": served.practice.room_tokens["room-2"]}
    with (
        httpx.Client(timeout=5) as client,
        client.stream(
            "GET", served.url + "/api/v1/rooms/room-2/display/events", params=room_2
        ) as other,
    ):
        quiet = Stream(other)
        assert quiet.next()["state"] == "idle"
        with stream(served) as events:
            assert events.next()["state"] == "idle"
            sid = served.post("/sessions", {"client": "c-0001", "room": "room-1"})["id"]
            assert events.next()["state"] == "in_session"
            xid = served.post(f"/sessions/{sid}/exits", {**EXIT, "safeguards": []})["id"]
            assert events.next()["state"] == "away"
            # A change the display does not show wakes the stream but sends nothing.
            served.post(f"/exits/{xid}/safeguards", {"safeguard": "door_closed"})
            served.post(f"/exits/{xid}/return", {"checked_in": False})
            assert events.next()["state"] == "in_session"
            served.clock.advance(minutes=40)
            served.post(f"/sessions/{sid}/end")
            ended = events.next()
            assert (ended["state"], ended["concern_url"] is not None) == ("idle", True)
        assert served.state.hub.subscribers(room_topic("pa", "room-2")) == 1


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_the_concern_links_end_arrives_with_a_heartbeat(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(display, "HEARTBEAT_SECONDS", 0.2)
    sid = served.post("/sessions", {"client": "c-0001", "room": "room-1"})["id"]
    served.clock.advance(minutes=45)
    served.post(f"/sessions/{sid}/end")
    with stream(served) as events:
        assert events.next()["concern_url"] is not None
        served.clock.advance(minutes=16)  # the link's 15 minutes are over; no notice is sent
        assert events.next() == {"room": "room-1", "state": "idle", "concern_url": None}
        assert events.comments >= 1


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_a_revoked_room_token_ends_the_stream(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(display, "HEARTBEAT_SECONDS", 0.1)
    with stream(served) as events:
        assert events.next()["state"] == "idle"
        served.state.accounts.revoke_room_tokens("room-1", "pa")
        with pytest.raises(AssertionError, match="the stream ended"):
            events.next()
    assert wait_for(lambda: served.state.hub.subscribers(TOPIC) == 0)


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_bearer_auth_works_for_the_stream_and_closing_it_unsubscribes(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.practice.room_tokens['room-1']}"}
    for _ in range(3):
        with (
            httpx.Client(timeout=5) as client,
            client.stream("GET", served.url + EVENTS, headers=headers) as response,
        ):
            events = Stream(response)  # (kept: dropping the line iterator closes the stream)
            assert events.next()["state"] == "idle"
            time.sleep(0.1)
            assert served.state.hub.subscribers(TOPIC) == 1
        assert wait_for(lambda: served.state.hub.subscribers(TOPIC) == 0)
