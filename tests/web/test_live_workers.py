"""Live updates across real server processes: `uvicorn stepout.web.app:app_from_env` twice on
one PostgreSQL database (as `stepout serve` workers would be), a room display following its
event stream on one worker while the therapist acts through the other; and once on SQLite,
one process. Displays read the stream over plain sockets, as a browser's EventSource would.
"""

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest

from stepout.adapters.db import Database
from stepout.services.accounts import AccountService
from tests.keys import run_keys
from tests.web.conftest import Practice, populate

EXIT = {
    "reason": "technical",
    "explanation": "Synthetic: the video link dropped, I will fetch the spare laptop.",
    "client_informed": True,
    "safeguards": ["records_secured", "screen_locked", "door_closed"],
    "expected_minutes": 3,
}
WITHIN = 1.0  # seconds: the promise to the room


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `uvicorn --factory` process on loopback, logging to a file."""

    def __init__(self, url: str, tmp_path: Path, name: str) -> None:
        self.port = free_port()
        self.log_path = tmp_path / f"{name}.log"
        self.log = self.log_path.open("wb")
        env = {
            **os.environ,
            "STEPOUT_DATABASE_URL": url,
            "STEPOUT_SECRET_FILE": str(tmp_path / "secret.key"),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "stepout.web.app:app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "1",
            ],
            env=env,
            cwd=tmp_path,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, within: float = 30.0) -> None:
        """uvicorn binds its port only once the app's start-up (LISTEN included) is done."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited:\n{self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"the server did not start within {within} s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class DisplayStream:
    """A room display following `/api/v1/rooms/{room}/display/events` on one server: each
    event's JSON, with the instant it arrived, goes into `events`."""

    def __init__(self, server: Server, room: str, token: str) -> None:
        self.events: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.sock = socket.create_connection(("127.0.0.1", server.port), 5)
        self.sock.sendall(
            f"GET /api/v1/rooms/{room}/display/events?token={token} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                buffer += self._recv()
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"transfer-encoding: chunked" in head.lower(), head
            body = b""
            while not self.stopping.is_set():
                # De-chunk what has arrived, then split the body into events.
                while b"\r\n" in buffer:
                    size_line, _, rest = buffer.partition(b"\r\n")
                    size = int(size_line.split(b";")[0], 16)
                    if len(rest) < size + 2:
                        break
                    body += rest[:size]
                    buffer = rest[size + 2 :]
                    if size == 0:
                        return
                *events, body = body.split(b"\n\n")
                for event in events:
                    data = b"\n".join(
                        line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")
                    )
                    if data:
                        self.events.put((time.monotonic(), orjson.loads(data)))
                buffer += self._recv()
        except BaseException as e:
            if not self.stopping.is_set():
                self.error = e

    def _recv(self) -> bytes:
        while not self.stopping.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise ConnectionError("the server closed the stream")
            return data
        return b""

    def next_state(self, within: float) -> tuple[float, str]:
        """The next event's arrival instant and state; fails after `within` seconds."""
        try:
            at, display = self.events.get(timeout=within)
        except queue.Empty:
            pytest.fail(f"no display event within {within} s (reader error: {self.error!r})")
        return at, display["state"]

    def wait_state(self, state: str, within: float) -> float:
        """Seconds until the display shows `state` (the events before it are skipped)."""
        started = time.monotonic()
        while True:
            left = within - (time.monotonic() - started)
            at, shown = self.next_state(max(left, 0.001))
            if shown == state:
                return at - started

    def quiet(self, seconds: float) -> bool:
        """No event arrives for `seconds`."""
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()


def set_up(url: str) -> dict[str, Practice]:
    """Practices pa and pb, as in the web fixtures, made straight in the database."""
    db = Database.open(url, migrate=False, keys=run_keys())
    try:
        state: Any = SimpleNamespace(accounts=AccountService(db.uow))  # all `populate` uses
        return {"pa": populate(state, "pa", "a"), "pb": populate(state, "pb", "b")}
    finally:
        db.dispose()


@contextmanager
def servers_on(url: str, tmp_path: Path, count: int) -> Iterator[list[Server]]:
    started = [Server(url, tmp_path, f"worker-{i + 1}") for i in range(count)]
    try:
        for server in started:
            server.wait_ready()
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def displays() -> Iterator[list[DisplayStream]]:
    opened: list[DisplayStream] = []
    yield opened
    for display in opened:
        display.close()


def follow(
    opened: list[DisplayStream], server: Server, practice: Practice, room: str
) -> DisplayStream:
    display = DisplayStream(server, room, practice.room_tokens[room])
    opened.append(display)
    assert display.next_state(5.0)[1] == "idle", "the stream starts with the state now"
    return display


def start_session(server: Server, practice: Practice, therapist: str, room: str) -> str:
    answer = httpx.post(
        f"{server.base}/api/v1/sessions",
        json={"client": "synthetic-client-1", "room": room},
        headers=practice.auth(therapist),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def step_out(server: Server, practice: Practice, therapist: str, session: str) -> str:
    answer = httpx.post(
        f"{server.base}/api/v1/sessions/{session}/exits",
        json=EXIT,
        headers=practice.auth(therapist),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def come_back(server: Server, practice: Practice, therapist: str, exit_id: str) -> None:
    answer = httpx.post(
        f"{server.base}/api/v1/exits/{exit_id}/return",
        json={"checked_in": True},
        headers=practice.auth(therapist),
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def pg_workers(postgres_url: str, tmp_path: Path) -> Iterator[tuple[list[Server], Any]]:
    Database.open(postgres_url, migrate=False, keys=run_keys()).migrate()
    practices = set_up(postgres_url)
    with servers_on(postgres_url, tmp_path, 2) as servers:
        yield servers, practices


@pytest.mark.postgres
def test_a_display_on_worker_two_shows_an_exit_made_on_worker_one_within_a_second(
    pg_workers: tuple[list[Server], dict[str, Practice]], displays: list[DisplayStream]
) -> None:
    (one, two), practices = pg_workers
    pa = practices["pa"]
    display = follow(displays, two, pa, "room-1")

    session = start_session(one, pa, "a-ther", "room-1")
    assert display.wait_state("in_session", WITHIN) < WITHIN

    exit_id = step_out(one, pa, "a-ther", session)
    assert display.wait_state("away", WITHIN) < WITHIN

    come_back(one, pa, "a-ther", exit_id)
    assert display.wait_state("in_session", WITHIN) < WITHIN

    # And the other way round: a display on worker one, the therapist on worker two.
    back_on_one = follow(displays, one, pa, "room-2")
    session = start_session(two, pa, "a-ther2", "room-2")
    assert back_on_one.wait_state("in_session", WITHIN) < WITHIN
    exit_id = step_out(two, pa, "a-ther2", session)
    assert back_on_one.wait_state("away", WITHIN) < WITHIN


@pytest.mark.postgres
def test_every_display_on_both_workers_hears_its_own_room_only(
    pg_workers: tuple[list[Server], dict[str, Practice]], displays: list[DisplayStream]
) -> None:
    (one, two), practices = pg_workers
    pa, pb = practices["pa"], practices["pb"]
    room_1 = [follow(displays, w, pa, "room-1") for w in (one, two, one, two)]
    room_2 = [follow(displays, w, pa, "room-2") for w in (two, one)]
    other_practice = [follow(displays, w, pb, "room-1") for w in (one, two)]

    first = start_session(one, pa, "a-ther", "room-1")
    second = start_session(two, pa, "a-ther2", "room-2")
    for display in room_1 + room_2:
        assert display.wait_state("in_session", WITHIN) < WITHIN

    first_exit = step_out(two, pa, "a-ther", first)  # room-1, through the other worker
    for display in room_1:
        assert display.wait_state("away", WITHIN) < WITHIN
    second_exit = step_out(one, pa, "a-ther2", second)
    for display in room_2:
        assert display.wait_state("away", WITHIN) < WITHIN

    come_back(one, pa, "a-ther", first_exit)
    come_back(two, pa, "a-ther2", second_exit)
    for display in room_1 + room_2:
        assert display.wait_state("in_session", WITHIN) < WITHIN

    # Practice pb's room-1 shares a room id with pa's, and saw none of it.
    for display in other_practice:
        assert display.quiet(0.3)


def test_on_sqlite_one_process_the_display_follows_the_exit_and_the_return(
    tmp_path: Path, displays: list[DisplayStream]
) -> None:
    url = f"sqlite:///{tmp_path / 'stepout.db'}"
    Database.open(url, keys=run_keys()).dispose()
    practices = set_up(url)
    pa = practices["pa"]
    with servers_on(url, tmp_path, 1) as (server,):
        display = follow(displays, server, pa, "room-1")
        session = start_session(server, pa, "a-ther", "room-1")
        assert display.wait_state("in_session", WITHIN) < WITHIN
        for _ in range(3):
            exit_id = step_out(server, pa, "a-ther", session)
            assert display.wait_state("away", WITHIN) < WITHIN
            come_back(server, pa, "a-ther", exit_id)
            assert display.wait_state("in_session", WITHIN) < WITHIN
