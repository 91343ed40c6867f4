"""`stepout serve` and `stepout demo` as a user runs them: real server processes on loopback,
each with its own temporary database and secret, stopped with SIGTERM.

Every name and text here is synthetic."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from stepout.adapters.db import Database
from stepout.cli import app
from stepout.services.accounts import AccountService
from tests.keys import run_keys

PASSWORD = "synthetic-pass-0001"
STARTUP_S = 30.0
LAUNCH = "from stepout.cli import main; main()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def environment(url: str, tmp_path: Path) -> dict[str, str | None]:
    """The variables a test's commands run with (never the user's data directory; None
    unsets a variable the developer's shell may have set)."""
    return {
        "STEPOUT_DATABASE_URL": url,
        "STEPOUT_SECRET_KEY_FILE": os.environ["STEPOUT_SECRET_KEY_FILE"],
        "STEPOUT_PUBLIC_URL": None,
        "STEPOUT_POLICY": None,
    }


def words(text: str) -> str:
    return " ".join(text.split())


def cli(env: dict[str, str | None], *args: str, input: str | None = None, code: int = 0) -> str:
    """Run a command in this process with `env`; its output."""
    result = CliRunner().invoke(app, list(args), input=input, env=env)
    assert result.exit_code == code, result.output
    return result.output


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited ({self.process.returncode}):\n{self.output()}")
            try:
                answer = httpx.get(f"{self.url}/healthz", timeout=2)
                if answer.status_code == 200 and answer.text == "ok":
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"no answer on {self.url}/healthz within {STARTUP_S} s:\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: the app shuts down cleanly, then the
        process ends (uvicorn re-raises the signal once done, so its status is "terminated by
        SIGTERM", which service managers count as a clean stop)."""
        assert self.process.poll() is None, self.output()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the server ignored SIGTERM:\n{self.output()}")
        assert code in (0, -signal.SIGTERM), self.output()
        assert "Application shutdown complete" in self.output()
        assert "Traceback" not in self.output()


@contextmanager
def running(env: dict[str, str | None], tmp_path: Path, *args: str, port: int) -> Iterator[Server]:
    log = tmp_path / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, *args],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("STEPOUT_")},
                **{k: v for k, v in env.items() if v is not None},
                "NO_COLOR": "1",
                "COLUMNS": "200",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def practice_with_therapist(env: dict[str, str | None]) -> str:
    """A practice, a therapist with a password, a room; the therapist's API token."""
    cli(env, "practices", "add", "p1", "--name", "Synthetic practice")
    cli(
        env, "users", "add", "alice", "-p", "p1", "--role", "therapist", "--id", "t-001",
        "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip
    cli(env, "rooms", "add", "room-1", "-p", "p1", "--name", "Room one")
    return cli(env, "tokens", "create", "alice").splitlines()[0].strip()


def serve_and_use(env: dict[str, str | None], tmp_path: Path, *extra: str) -> None:
    """Serve, answer /healthz, take the API token, keep room tokens out of the log, stop."""
    api_token = practice_with_therapist(env)
    room_url = cli(env, "rooms", "token", "room-1").splitlines()[0].strip()
    room_token = room_url.rpartition("token=")[2]
    port = free_port()
    with running(env, tmp_path, "serve", "--port", str(port), *extra, port=port) as server:
        server.wait_ready()
        bearer = {"Authorization": f"Bearer {api_token}"}
        started = httpx.post(
            f"{server.url}/api/v1/sessions",
            json={"client": "c-1", "room": "room-1"},
            headers=bearer,
        )
        assert started.status_code == 201, started.text
        assert started.json()["therapist"] == "t-001"
        anonymous = httpx.get(f"{server.url}/api/v1/sessions/{started.json()['id']}")
        assert anonymous.status_code == 401
        display = httpx.get(f"{server.url}/api/v1/rooms/room-1/display?token={room_token}")
        assert display.status_code == 200, display.text
        assert display.json()["state"] == "in_session"  # the session just started
        server.stop()
        log = server.output()
    assert f"serving on http://127.0.0.1:{port}" in words(log)
    # One JSON line per request, naming the route's template: never the URL or its query.
    requests = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"request"' in line
    ]
    routes = {(r["method"], r["route"], r["status"]) for r in requests}
    assert ("GET", "/api/v1/rooms/{room}/display", 200) in routes
    assert ("GET", "/healthz", 200) in routes
    assert room_token not in log
    assert "token=" not in log
    assert api_token not in log
    assert PASSWORD not in log


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path)
    serve_and_use(env, tmp_path)


def test_several_workers_are_refused_on_sqlite(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path)
    out = words(cli(env, "serve", "--workers", "2", "--port", str(free_port()), code=2))
    assert "an SQLite database is served by one process" in out
    assert "PostgreSQL" in out


def test_serve_refuses_a_postgresql_database_not_at_the_current_schema(
    tmp_path: Path, postgres_url: str
) -> None:
    env = environment(postgres_url, tmp_path)
    out = words(cli(env, "serve", "--port", str(free_port()), code=2))
    assert "has no Stepout schema" in out
    assert "stepout init" in out


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_serve_one_postgresql_database(tmp_path: Path, postgres_url: str) -> None:
    env = environment(postgres_url, tmp_path)
    cli(env, "init")
    serve_and_use(env, tmp_path, "--workers", "2")


# The demo

LOGIN = re.compile(r"password, (demo-[0-9a-f]{10})")
DEMO_USERS = ("demo-therapist", "demo-supervisor", "demo-admin", "demo-biller")


def demo_logins(output: str) -> tuple[str, str]:
    """This run's password and the room display's link, as the demo printed them."""
    text = words(output)
    found = LOGIN.search(text)
    assert found is not None, output
    link = re.search(r"(http://\S+/display/room-01\?token=sr_\S+)", text)
    assert link is not None, output
    for username in DEMO_USERS:
        assert username in text
    assert "synthetic" in text
    return found.group(1), link.group(1)


def test_demo_runs_twice_on_one_database_with_a_login_per_role(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stepout.db'}"
    env = environment(url, tmp_path)
    first = cli(env, "demo", "--sessions", "300", "--no-serve")
    password, link = demo_logins(first)
    assert link.startswith("http://127.0.0.1:8000/display/room-01?token=")
    assert "Exits by reason" in first
    assert "Multi-factor sign-in (MFA) is waived for this demo practice only" in words(first)

    second = cli(env, "demo", "--sessions", "300", "--no-serve", "--port", "8123")
    assert "the demo practice was already there" in words(second)
    new_password, new_link = demo_logins(second)
    assert new_link.startswith("http://127.0.0.1:8123/display/room-01?token=")
    assert new_password != password
    assert "Exits by reason" in second

    db = Database.open(url, keys=run_keys())
    try:
        accounts = AccountService(db.uow)
        for username, role in zip(
            DEMO_USERS, ("therapist", "supervisor", "admin", "biller"), strict=True
        ):
            signed = accounts.sign_in(username, new_password)
            assert signed is not None, username
            assert (signed.user.practice, signed.user.role) == ("demo", role)
            assert signed.second_step is None  # the demo practice waives MFA
            assert accounts.sign_in(username, password) is None  # last run's password
        therapist = accounts.user("demo-therapist")
        assert therapist is not None
        assert therapist.id == "t-001"  # the synthetic therapist: the demo's sessions are theirs
        for shown in (link, new_link):
            room = accounts.room_of_token(shown.rpartition("token=")[2])
            assert room is not None
            assert (room.practice, room.id) == ("demo", "room-01")
        assert [r.id for r in accounts.rooms("demo")][:2] == ["room-01", "room-02"]
        with db.uow(read_only=True) as uow:
            own = uow.records.sessions_of_therapist("demo", "t-001", 0, 2**62)
        assert own
    finally:
        db.dispose()


def test_demo_refuses_a_username_taken_outside_the_demo(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path)
    cli(env, "practices", "add", "p1", "--name", "Synthetic practice")
    cli(env, "users", "add", "demo-admin", "-p", "p1", "--role", "admin")
    out = words(cli(env, "demo", "--sessions", "100", "--no-serve", code=2))
    assert "demo-admin already exists and is not the demo's admin" in out


@pytest.mark.slow
def test_demo_starts_the_web_app(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path)
    port = free_port()
    args = ("demo", "--sessions", "200", "--host", "127.0.0.1", "--port", str(port))
    with running(env, tmp_path, *args, port=port) as server:
        server.wait_ready()
        password, link = demo_logins(server.output())
        assert link.startswith(f"{server.url}/display/room-01?token=")
        room_token = link.rpartition("token=")[2]
        display = httpx.get(f"{server.url}/api/v1/rooms/room-01/display?token={room_token}")
        assert display.status_code == 200, display.text
        assert display.json()["state"] in ("idle", "in_session", "away")
        server.stop()
    assert server.output().count(password) == 1  # shown once, never logged
