"""The web app under test: a real app on a fresh SQLite database (and, for tests that ask
for `engine_url` over both engines, PostgreSQL), with a practice, its staff and rooms made
through the account service, and API tokens for each. An account a test signs in with sets up
its second factor through the sign-in service first; its `Authenticator` gives the codes.

Every name, client id and text here is synthetic.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stepout.adapters.db import Database
from stepout.config import Settings
from stepout.crypto.keys import Keys
from stepout.domain.instants import MICROS_PER_MINUTE, Instant, parse_instant
from stepout.services import credentials, mfa
from stepout.services.workflow import Clock
from stepout.web.app import create_app
from stepout.web.state import AppState

PASSWORD = "synthetic-pass-0001"
ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@dataclass
class Authenticator:
    """A staff member's authenticator app: the TOTP secret, and the last time step it gave a
    code for. The app refuses a code of a step it has taken already, so each `code` is of the
    earliest step it still accepts and has not taken: the one before (unless the current step
    ends within seconds), the current one, the next; after those it waits for the clock."""

    secret: str
    last_step: int = -1

    def code(self, clock: Callable[[], Instant]) -> str:
        at = clock()
        into = at // 1_000_000 % mfa.STEP_SECONDS  # seconds into the current step
        oldest = mfa.step_of(at) - (mfa.DRIFT_STEPS if into < mfa.STEP_SECONDS - 5 else 0)
        step = max(oldest, self.last_step + 1)
        deadline = time.monotonic() + 2 * mfa.STEP_SECONDS
        while step > mfa.step_of(clock()) + mfa.DRIFT_STEPS:
            assert time.monotonic() < deadline, "the app's clock did not reach a fresh step"
            time.sleep(0.25)
        self.last_step = step
        return pyotp.TOTP(self.secret).generate_otp(step)


@dataclass
class Practice:
    id: str
    tokens: dict[str, str] = field(default_factory=dict)  # username -> API token
    room_tokens: dict[str, str] = field(default_factory=dict)  # room -> display token
    authenticators: dict[str, Authenticator] = field(default_factory=dict)  # username -> app

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


@dataclass
class Web:
    app: FastAPI
    client: TestClient
    settings: Settings
    practices: dict[str, Practice]

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.stepout
        return state

    @property
    def a(self) -> Practice:
        return self.practices["pa"]

    @property
    def b(self) -> Practice:
        return self.practices["pb"]


class FakeClock:
    """A clock the test moves: `clock.advance(minutes=5)`."""

    def __init__(self, start: str = "2026-03-02T15:00:00+00:00") -> None:
        self.at: Instant = parse_instant(start)

    def __call__(self) -> Instant:
        return self.at

    def advance(self, minutes: float = 0, seconds: float = 0) -> None:
        self.at += round(minutes * MICROS_PER_MINUTE + seconds * 1_000_000)


@pytest.fixture(autouse=True)
def _quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with its smallest cost: each app makes ten accounts, and hashing them at the
    production cost would be most of a web test's time. Verification reads the cost from the
    hash, so sign-in works the same."""
    quick = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(credentials, "_hasher", quick)
    monkeypatch.setattr(credentials, "_DUMMY_HASH", quick.hash("synthetic-stand-in"))


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=url)


def populate(state: AppState, practice: str, prefix: str) -> Practice:
    """A practice with one user of each role (`<prefix>-admin`, `<prefix>-super`,
    `<prefix>-ther`, `<prefix>-ther2`, `<prefix>-bill`), two rooms and tokens for all."""
    accounts = state.accounts
    accounts.add_practice(practice, f"Synthetic practice {prefix.upper()}")
    made = Practice(practice)
    for name, role in (
        ("admin", "admin"),
        ("super", "supervisor"),
        ("ther", "therapist"),
        ("ther2", "therapist"),
        ("bill", "biller"),
    ):
        username = f"{prefix}-{name}"
        accounts.add_user(username, practice, role, PASSWORD)
        made.tokens[username] = accounts.create_api_token(username)[1]
    for room in ("room-1", "room-2"):
        accounts.add_room(room, practice, f"Room {room[-1]}")
        made.room_tokens[room] = accounts.create_room_token(room, practice)[1]
    return made


def enrol(state: AppState, username: str, password: str = PASSWORD) -> Authenticator:
    """Set up the account's second factor as a person would (sign in, take the enrolment's
    secret, confirm it with a first code) and return its authenticator."""
    signin = state.accounts.signin
    pending = signin.sign_in(username, password)
    assert pending is not None, username
    assert pending.second_step == "enrol", username
    enrolment = signin.enrolment(pending.token)
    assert enrolment is not None
    app = Authenticator(enrolment.secret)
    assert signin.confirm_enrolment(pending.token, app.code(state.now)) is not None
    return app


def authenticator(state: AppState, practices: dict[str, Practice], username: str) -> Authenticator:
    """The authenticator of one of the practices' accounts; the account sets up its second
    factor on first use (accounts no test signs in with need none)."""
    for made in practices.values():
        if username in made.tokens:
            if username not in made.authenticators:
                made.authenticators[username] = enrol(state, username)
            return made.authenticators[username]
    raise KeyError(f"{username} is not an account of the test's practices")


def make_web(url: str, tmp_path: Path, clock: Clock | None = None) -> Iterator[Web]:
    settings = settings_for(url, tmp_path)
    app = create_app(settings) if clock is None else create_app(settings, clock=clock)
    state: AppState = app.state.stepout
    practices = {"pa": populate(state, "pa", "a"), "pb": populate(state, "pb", "b")}
    app.state.practices = practices  # for the login helper (`pages_support.login`)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield Web(app, client, settings, practices)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    """The app on SQLite, with practices `pa` (users a-*) and `pb` (users b-*)."""
    yield from make_web(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path)


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stepout.db'}"
    url: str = request.getfixturevalue("postgres_url")
    Database.open(url, keys=keys, migrate=False).migrate()
    return url


@pytest.fixture
def web_any(engine_url: str, tmp_path: Path) -> Iterator[Web]:
    """As `web`, on each engine in turn."""
    yield from make_web(engine_url, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def web_clocked(engine_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Web]:
    """As `web_any`, with the app on `clock` (a `FakeClock` the test advances)."""
    yield from make_web(engine_url, tmp_path, clock)
