"""The account commands, end to end on SQLite and PostgreSQL: practices and their display help,
users and passwords, rooms and their display links, API tokens. What the commands print is
checked against the account service and the web app itself.

Every name and text here is synthetic."""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from stepout.adapters.db import Database
from stepout.cli import app
from stepout.config import Settings
from stepout.services.accounts import AccountService
from stepout.web.app import create_app
from tests.keys import run_keys

PASSWORD = "synthetic-pass-0001"
PUBLIC_URL = "https://stepout.example.test"


BOX = dict.fromkeys(range(0x2500, 0x2580), " ")  # table borders


def words(text: str) -> str:
    return " ".join(text.translate(BOX).split())


class Cli:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.settings = Settings(database_url=url)
        self.runner = CliRunner()

    def run(self, *args: str, input: str | None = None, code: int = 0) -> Result:
        result = self.runner.invoke(app, list(args), input=input)
        assert result.exit_code == code, result.output
        return result

    def out(self, *args: str, input: str | None = None, code: int = 0) -> str:
        """The output as one line of words (rich wraps long lines and draws tables)."""
        return words(self.run(*args, input=input, code=code).output)

    @contextmanager
    def accounts(self) -> Iterator[AccountService]:
        db = Database.open(self.url, keys=run_keys())
        try:
            yield AccountService(db.uow, keys=db.keys)
        finally:
            db.dispose()

    @contextmanager
    def client(self) -> Iterator[TestClient]:
        with TestClient(create_app(self.settings)) as client:
            yield client


def _cli(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("STEPOUT_DATABASE_URL", url)
    monkeypatch.setenv("STEPOUT_SECRET_FILE", str(tmp_path / "secret.key"))
    monkeypatch.setenv("STEPOUT_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.delenv("STEPOUT_POLICY", raising=False)
    cli = Cli(url, tmp_path)
    cli.run("init")
    return cli


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """On SQLite and PostgreSQL."""
    return _cli(database_url, tmp_path, monkeypatch)


@pytest.fixture
def lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """On SQLite only: for what does not depend on the storage (refusals before any write)."""
    return _cli(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path, monkeypatch)


def practice(cli: Cli, practice_id: str = "p1") -> None:
    cli.run("practices", "add", practice_id, "--name", f"Synthetic practice {practice_id}")


def user(cli: Cli, username: str, role: str, practice_id: str = "p1", *extra: str) -> Result:
    return cli.run(
        "users",
        "add",
        username,
        "--practice",
        practice_id,
        "--role",
        role,
        "--password-stdin",
        *extra,
        input=PASSWORD + "\n",
    )


def token(cli: Cli, username: str) -> str:
    result = cli.run("tokens", "create", username)
    return result.stdout.strip()


# Practices and what their displays say


def test_a_practice_gets_its_display_help_and_it_can_be_changed(cli: Cli) -> None:
    out = cli.out(
        "practices",
        "add",
        "p1",
        "--name",
        "Synthetic Counselling",
        "--timezone",
        "America/Chicago",
        "--call-button",
        "Press the blue button.",
    )
    assert "Added practice p1 (Synthetic Counselling, America/Chicago)" in out
    with cli.accounts() as accounts:
        shown = accounts.help_text("p1")
    assert shown.call_button == "Press the blue button."
    assert shown.reception == "Reception can be reached on the room phone."  # the default

    out = cli.out("practices", "help", "p1", "--emergency", "Dial 911, or 9 then 911.")
    assert "Dial 911, or 9 then 911." in out
    assert "Press the blue button." in out  # the rest is kept
    assert "Saved" in out
    with cli.accounts() as accounts:
        assert accounts.help_text("p1").emergency == "Dial 911, or 9 then 911."
    assert "Saved" not in cli.out("practices", "help", "p1")  # just shows it


def test_practice_refusals_name_what_is_wrong(lite: Cli) -> None:
    practice(lite)
    assert "practice p1 already exists" in lite.out("practices", "add", "p1", "--name", "X", code=2)
    out = lite.out("practices", "add", "p2", "--name", "X", "--timezone", "Mars/Olympus", code=2)
    assert "timezone: Mars/Olympus is not an IANA time zone name" in out
    assert "no practice p9" in lite.out("practices", "help", "p9", "--emergency", "x", code=2)
    assert "Missing option '--name'" in lite.out("practices", "add", "p3", code=2)


# Users and passwords


def test_users_are_added_with_a_password_from_stdin_that_is_never_shown(cli: Cli) -> None:
    practice(cli)
    added = user(cli, "alice", "therapist", "p1", "--id", "t-001")
    assert "Added therapist alice to practice p1, therapist id t-001" in added.output
    user(cli, "bob", "supervisor")
    bare = cli.run("users", "add", "carol", "-p", "p1", "--role", "biller")
    assert "no password" in bare.output
    for result in (added, bare):
        assert PASSWORD not in result.output
    listed = cli.out("users", "list", "--practice", "p1")
    assert "alice therapist t-001 active" in listed
    assert "bob supervisor bob active" in listed
    assert "carol biller carol active" in listed
    assert PASSWORD not in listed
    with cli.accounts() as accounts:
        signed = accounts.sign_in("alice", PASSWORD)
        assert signed is not None
        assert signed.user.id == "t-001"
        assert accounts.sign_in("carol", PASSWORD) is None  # no password: API tokens only


def test_user_refusals_name_what_is_wrong(cli: Cli) -> None:
    practice(cli)
    user(cli, "alice", "therapist")
    out = cli.out("users", "add", "alice", "-p", "p1", "--role", "admin", code=2)
    assert "username: alice is taken" in out
    out = cli.out("users", "add", "zed", "-p", "p9", "--role", "admin", code=2)
    assert "no practice p9" in out
    out = cli.out("users", "add", "zed", "-p", "p1", "--role", "owner", code=2)
    assert "role: expected one of admin, supervisor, therapist, biller" in out
    out = cli.out("users", "add", "zed", "-p", "p1", "--role", "admin", "--id", "alice", code=2)
    assert "id: alice is taken" in out
    assert "no users yet" not in cli.out("users", "list", "-p", "p1")
    assert "no practice p9" in cli.out("users", "list", "-p", "p9", code=2)


def test_weak_or_missing_passwords_are_refused_without_echoing_them(lite: Cli) -> None:
    practice(lite)
    weak = "short-pw"
    result = lite.run(
        "users", "add", "zed", "-p", "p1", "--role", "admin", "--password-stdin",
        input=weak + "\n", code=2,
    )  # fmt: skip
    assert "password: A password needs at least 12 characters." in result.output
    assert weak not in result.output
    result = lite.run(
        "users", "add", "zed", "-p", "p1", "--role", "admin", "--password-stdin",
        input="aaaaaaaaaaaaaaaa\n", code=2,
    )  # fmt: skip
    assert "more than a few different characters" in result.output
    assert "aaaaaaaaaaaa" not in result.output
    out = lite.out(
        "users", "add", "zed", "-p", "p1", "--role", "admin", "--password-stdin", input="",
        code=2,
    )  # fmt: skip
    assert "no password on standard input" in out
    assert "has no users yet" in lite.out("users", "list", "-p", "p1")  # nothing was stored


def test_only_the_first_line_of_stdin_is_the_password(lite: Cli) -> None:
    practice(lite)
    lite.run(
        "users", "add", "alice", "-p", "p1", "--role", "admin", "--password-stdin",
        input=PASSWORD + "\r\nsomething else\n",
    )  # fmt: skip
    with lite.accounts() as accounts:
        assert accounts.sign_in("alice", PASSWORD) is not None


def test_a_new_password_replaces_the_old_one_and_ends_browser_sessions(cli: Cli) -> None:
    practice(cli)
    user(cli, "alice", "admin")
    with cli.accounts() as accounts:
        before = accounts.sign_in("alice", PASSWORD)
        assert before is not None
    new = "another-synthetic-9"
    result = cli.run("users", "password", "alice", "--password-stdin", input=new + "\n")
    assert "Password of alice changed" in result.output
    assert new not in result.output
    with cli.accounts() as accounts:
        assert accounts.sign_in("alice", PASSWORD) is None
        assert accounts.sign_in("alice", new) is not None
        assert accounts.web_session(before.token) is None
    assert "--password-stdin" in cli.out("users", "password", "alice", code=2)
    assert "no user nobody" in cli.out(
        "users", "password", "nobody", "--password-stdin", input=new + "\n", code=2
    )
    out = cli.out("users", "password", "alice", "--password-stdin", input="tiny\n", code=2)
    assert "at least 12 characters" in out


def test_a_disabled_user_cannot_sign_in_or_use_tokens_until_enabled(cli: Cli) -> None:
    practice(cli)
    user(cli, "alice", "therapist")
    api_token = token(cli, "alice")
    assert "Disabled alice" in cli.out("users", "disable", "alice")
    assert "alice therapist alice disabled" in cli.out("users", "list", "-p", "p1")
    with cli.accounts() as accounts:
        assert accounts.sign_in("alice", PASSWORD) is None
        assert accounts.user_of_api_token(api_token) is None
    assert "alice is disabled" in cli.out("tokens", "create", "alice", code=2)
    assert "Enabled alice" in cli.out("users", "enable", "alice")
    with cli.accounts() as accounts:
        assert accounts.sign_in("alice", PASSWORD) is not None
        assert accounts.user_of_api_token(api_token) is not None
    assert "no user nobody" in cli.out("users", "disable", "nobody", code=2)


# Rooms and their display links


def test_mfa_reset_drops_the_factor_and_ends_the_sessions(cli: Cli) -> None:
    import pyotp

    practice(cli)
    user(cli, "alice", "therapist")
    with cli.accounts() as accounts:
        pending = accounts.sign_in("alice", PASSWORD)
        assert pending is not None
        enrolment = accounts.signin.enrolment(pending.token)
        assert enrolment is not None
        code = pyotp.TOTP(enrolment.secret).now()
        done = accounts.signin.confirm_enrolment(pending.token, code)
        assert done is not None
        session = done[0].token
        assert accounts.web_session(session) is not None
    out = cli.out("users", "mfa-reset", "alice")
    assert "MFA of alice reset: dropped its second factor and recovery codes" in out
    assert "its browser sessions have ended" in out
    with cli.accounts() as accounts:
        assert accounts.web_session(session) is None
        again = accounts.sign_in("alice", PASSWORD)
        assert again is not None
        assert again.second_step == "enrol"
    assert "it had no second factor" in cli.out("users", "mfa-reset", "alice")
    assert "no user nobody" in cli.out("users", "mfa-reset", "nobody", code=2)


def test_rooms_token_prints_a_display_link_that_opens_that_room_only(cli: Cli) -> None:
    practice(cli)
    added = cli.out("rooms", "add", "room-1", "--practice", "p1", "--name", "Garden room")
    assert "Added room room-1 (Garden room) to practice p1" in added
    cli.run("rooms", "add", "room-2", "--practice", "p1", "--name", "Quiet room")
    assert "p1 room-1 Garden room" in cli.out("rooms", "list")

    result = cli.run("rooms", "token", "room-1")
    url = result.stdout.strip()
    prefix = f"{PUBLIC_URL}/display/room-1?token="
    assert url.startswith(prefix), result.stdout
    room_token = url.removeprefix(prefix)
    assert room_token.startswith("sr_")
    assert "opens this room's display only" in words(result.stderr)
    with cli.accounts() as accounts:
        found = accounts.room_of_token(room_token)
    assert found is not None
    assert (found.practice, found.id) == ("p1", "room-1")

    with cli.client() as client:
        app_routes = {getattr(r, "path", None) for r in client.app.routes}  # type: ignore[attr-defined]
        if "/api/v1/rooms/{room}/display" in app_routes:
            shown = client.get(f"/api/v1/rooms/room-1/display?token={room_token}")
            assert shown.status_code == 200, shown.text
            assert shown.json()["state"] == "idle"
            other = client.get(f"/api/v1/rooms/room-2/display?token={room_token}")
            assert other.status_code == 403
        if "/display/{room}" in app_routes:
            page = client.get(url.removeprefix(PUBLIC_URL))
            assert page.status_code == 200

    revoked = cli.out("rooms", "revoke", "room-1", "--practice", "p1")
    assert "Revoked 1 display link of room room-1, practice p1" in revoked
    with cli.accounts() as accounts:
        assert accounts.room_of_token(room_token) is None


def test_a_room_in_several_practices_needs_its_practice_named(cli: Cli) -> None:
    practice(cli, "p1")
    practice(cli, "p2")
    cli.run("rooms", "add", "room-1", "-p", "p1", "--name", "One")
    cli.run("rooms", "add", "room-1", "-p", "p2", "--name", "Uno")
    out = cli.out("rooms", "token", "room-1", code=2)
    assert "room room-1 is in several practices: name the practice" in out
    url = cli.run("rooms", "token", "room-1", "--practice", "p2").stdout.strip()
    with cli.accounts() as accounts:
        found = accounts.room_of_token(url.rpartition("token=")[2])
    assert found is not None
    assert found.practice == "p2"
    listed = cli.out("rooms", "list", "--practice", "p2")
    assert "p2 room-1 Uno" in listed
    assert "One" not in listed


def test_room_refusals_name_what_is_wrong(lite: Cli) -> None:
    practice(lite)
    lite.run("rooms", "add", "room-1", "-p", "p1", "--name", "One")
    out = lite.out("rooms", "add", "room-1", "-p", "p1", "--name", "Again", code=2)
    assert "room room-1 already exists in practice p1" in out
    assert "no practice p9" in lite.out("rooms", "add", "room-2", "-p", "p9", "--name", "X", code=2)
    assert "no room room-9" in lite.out("rooms", "token", "room-9", code=2)
    assert "no practice p9" in lite.out("rooms", "token", "room-1", "-p", "p9", code=2)
    assert "no room room-9" in lite.out("rooms", "revoke", "room-9", code=2)
    assert "no practice p9" in lite.out("rooms", "list", "-p", "p9", code=2)


# API tokens


def test_an_api_token_authenticates_its_user_until_revoked(cli: Cli) -> None:
    practice(cli)
    user(cli, "alice", "therapist", "p1", "--id", "t-001")
    cli.run("rooms", "add", "room-1", "-p", "p1", "--name", "One")
    result = cli.run("tokens", "create", "alice")
    api_token = result.stdout.strip()
    assert api_token.startswith("so_")
    assert "\n" not in api_token  # alone on standard output: TOKEN=$(stepout tokens create ...)
    explained = words(result.stderr)
    assert "shown once" in explained
    token_id = explained.split("API token ", 1)[1].split()[0]
    assert token_id.startswith("tok_")

    bearer = {"Authorization": f"Bearer {api_token}"}
    with cli.client() as client:
        new = {"client": "c-1", "room": "room-1"}
        started = client.post("/api/v1/sessions", json=new, headers=bearer)
        assert started.status_code == 201, started.text
        assert started.json()["therapist"] == "t-001"

    assert f"Revoked API token {token_id}" in cli.out("tokens", "revoke", token_id)
    with cli.client() as client:
        refused = client.get(f"/api/v1/sessions/{started.json()['id']}", headers=bearer)
        assert refused.status_code == 401
    assert f"no live API token {token_id}" in cli.out("tokens", "revoke", token_id, code=2)
    assert "no user nobody" in cli.out("tokens", "create", "nobody", code=2)


def test_the_cli_starts_without_the_database_or_web_stack() -> None:
    code = (
        "import sys\n"
        "from stepout.cli import main\n"
        "sys.argv = ['stepout', '--version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'argon2', 'uvicorn', 'fastapi')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "stepout" in done.stdout
