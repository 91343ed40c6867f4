"""Accounts on both engines: practices, users, tokens, rooms, sign-in and browser sessions.
Passwords and ids are synthetic."""

import pytest

from stepout.adapters.db import Database
from stepout.domain.accounts import HelpText
from stepout.services.accounts import (
    ABSOLUTE_TIMEOUT_US,
    IDLE_TIMEOUT_US,
    AccountError,
    AccountService,
)
from tests.integration.builders import MINUTE, T0

PASSWORD = "synthetic-pass-0001"


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> int:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(db: Database, clock: Clock) -> AccountService:
    service = AccountService(db.uow, clock)
    service.add_practice("p1", "Synthetic practice", "America/New_York")
    service.add_user("ther", "p1", "therapist", PASSWORD, user_id="t-001")
    # The password alone signs in here, as in the demo practice: these tests are about the
    # password and the browser session. The second step has its own (test_sign_in.py).
    service.signin.waive_mfa("p1")
    return service


def test_a_practice_is_a_ledger_record_with_its_display_help(
    db: Database, accounts: AccountService
) -> None:
    accounts.set_help_text("p1", HelpText("Button.", "Extension 9.", "Call 112."))
    with db.uow(read_only=True) as uow:
        found = uow.records.practice("p1")
        assert found is not None
        assert found.timezone == "America/New_York"
        assert uow.accounts.help_text("p1") == HelpText("Button.", "Extension 9.", "Call 112.")
        assert uow.accounts.help_text("p-none") == HelpText()
    assert db.verify_ledger().ok


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("p1", "Again"), "already exists"),
        (("p2", " "), "id and a name"),
        (("p2", "Name", "Mars/Olympus"), "timezone"),
    ],
)
def test_bad_practices_are_refused(
    accounts: AccountService, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(AccountError, match=message):
        accounts.add_practice(*args)


def test_users_are_refused_with_what_is_wrong(accounts: AccountService) -> None:
    with pytest.raises(AccountError, match="role"):
        accounts.add_user("x", "p1", "owner", PASSWORD)
    with pytest.raises(AccountError, match="taken"):
        accounts.add_user("ther", "p1", "biller", PASSWORD)
    with pytest.raises(AccountError, match="taken"):
        accounts.add_user("other", "p1", "therapist", PASSWORD, user_id="t-001")
    with pytest.raises(AccountError, match="no practice"):
        accounts.add_user("y", "p9", "biller", PASSWORD)
    with pytest.raises(AccountError, match="password: A password needs at least 12"):
        accounts.add_user("z", "p1", "biller", "short")
    with pytest.raises(AccountError, match="username"):
        accounts.add_user("two words", "p1", "biller", PASSWORD)


def test_an_api_token_opens_its_user_until_revoked(accounts: AccountService) -> None:
    token_id, token = accounts.create_api_token("ther")
    user = accounts.user_of_api_token(token)
    assert user is not None
    assert (user.id, user.role) == ("t-001", "therapist")
    assert accounts.user_of_api_token(token + "x") is None
    accounts.revoke_api_token(token_id)
    assert accounts.user_of_api_token(token) is None
    with pytest.raises(AccountError, match="no live API token"):
        accounts.revoke_api_token(token_id)


def test_a_room_token_opens_its_room_only(accounts: AccountService) -> None:
    accounts.add_room("r1", "p1", "Room one")
    room, token = accounts.create_room_token("r1")
    assert (room.practice, room.id) == ("p1", "r1")
    assert accounts.room_of_token(token) == room
    assert accounts.room_of_token("sr_unknown") is None
    with pytest.raises(AccountError, match="already exists"):
        accounts.add_room("r1", "p1", "Again")
    with pytest.raises(AccountError, match="no room"):
        accounts.create_room_token("r9")


def test_a_room_id_in_two_practices_needs_the_practice_named(accounts: AccountService) -> None:
    accounts.add_practice("p2", "Second synthetic practice")
    accounts.add_room("r1", "p1", "Room one")
    accounts.add_room("r1", "p2", "Room one")
    with pytest.raises(AccountError, match="several practices"):
        accounts.create_room_token("r1")
    assert accounts.create_room_token("r1", "p2")[0].practice == "p2"


def test_sign_in_needs_the_right_password_of_an_enabled_account(
    db: Database, accounts: AccountService
) -> None:
    assert accounts.sign_in("ther", "wrong-password-000") is None
    assert accounts.sign_in("nobody", PASSWORD) is None
    signed = accounts.sign_in("ther", PASSWORD)
    assert signed is not None
    assert signed.user.id == "t-001"
    assert signed.csrf
    found = accounts.web_session(signed.token)
    assert found is not None
    assert found.csrf == signed.csrf
    with db.uow() as uow:
        uow.accounts.set_disabled("t-001", True)
        uow.commit()
    assert accounts.web_session(signed.token) is None
    assert accounts.sign_in("ther", PASSWORD) is None


def test_a_browser_session_ends_when_idle_30_minutes(
    accounts: AccountService, clock: Clock
) -> None:
    signed = accounts.sign_in("ther", PASSWORD)
    assert signed is not None
    clock.t += IDLE_TIMEOUT_US - MINUTE
    assert accounts.web_session(signed.token) is not None  # and this use refreshes it
    clock.t += IDLE_TIMEOUT_US - MINUTE
    assert accounts.web_session(signed.token) is not None
    clock.t += IDLE_TIMEOUT_US + 1
    assert accounts.web_session(signed.token) is None
    clock.t = T0  # ended for good, even if the clock goes back
    assert accounts.web_session(signed.token) is None


def test_a_browser_session_ends_after_12_hours_however_busy(
    accounts: AccountService, clock: Clock
) -> None:
    signed = accounts.sign_in("ther", PASSWORD)
    assert signed is not None
    while clock.t - T0 < ABSOLUTE_TIMEOUT_US:
        assert accounts.web_session(signed.token) is not None
        clock.t += 20 * MINUTE
    assert accounts.web_session(signed.token) is None


def test_sign_out_and_a_new_password_end_sessions(accounts: AccountService) -> None:
    first = accounts.sign_in("ther", PASSWORD)
    second = accounts.sign_in("ther", PASSWORD)
    assert first is not None
    assert second is not None
    accounts.sign_out(first.token)
    assert accounts.web_session(first.token) is None
    assert accounts.web_session(second.token) is not None
    accounts.set_password("ther", "synthetic-pass-0002")
    assert accounts.web_session(second.token) is None
    assert accounts.sign_in("ther", PASSWORD) is None
    assert accounts.sign_in("ther", "synthetic-pass-0002") is not None


def test_a_token_revoked_elsewhere_stops_working_within_the_cache_window(
    db: Database, accounts: AccountService, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from stepout.services import accounts as module

    token_id, token = accounts.create_api_token("ther")
    assert accounts.user_of_api_token(token) is not None  # now remembered
    with db.uow() as uow:  # another process revokes it
        uow.accounts.revoke_api_token(token_id, T0)
        uow.commit()
    assert accounts.user_of_api_token(token) is not None  # still within the window
    later = time.monotonic() + module.AUTH_CACHE_SECONDS + 0.1
    monkeypatch.setattr(module.time, "monotonic", lambda: later)
    assert accounts.user_of_api_token(token) is None


def test_an_unknown_token_is_not_remembered(db: Database, accounts: AccountService) -> None:
    assert accounts.user_of_api_token("so_made-up") is None
    assert accounts._known_users == {}
