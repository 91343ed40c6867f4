"""Login throttling on both engines: kept in the database (so every web worker counts the same
failures), per account and per address, with one message whether or not the account exists;
wrong second-factor codes count too, and a complete sign-in clears the account's count.
Accounts and passwords are synthetic."""

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from stepout.adapters.db import Database
from stepout.crypto.keys import Keys
from stepout.services import credentials, mfa
from stepout.services.accounts import AccountService
from stepout.services.throttling import ACCOUNT_LIMIT, ADDRESS_LIMIT, WINDOW_US, Throttled
from tests.integration.builders import MINUTE, T0

PASSWORD = "synthetic-pass-0001"
WRONG = "wrong-password-000"
HERE = "192.0.2.10"  # documentation addresses (RFC 5737)
THERE = "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> int:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def _quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its smallest cost: these tests check many passwords (and unknown names,
    checked against a stand-in hash)."""
    quick = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(credentials, "_hasher", quick)
    monkeypatch.setattr(credentials, "_DUMMY_HASH", quick.hash("synthetic-stand-in"))


@pytest.fixture
def accounts(db: Database, clock: Clock, keys: Keys) -> AccountService:
    service = AccountService(db.uow, clock, keys=keys)
    service.add_practice("p1", "Synthetic practice")
    service.add_user("ther", "p1", "therapist", PASSWORD)
    service.add_user("super", "p1", "supervisor", PASSWORD)
    return service


def fail(accounts: AccountService, username: str, times: int, address: str = HERE) -> None:
    for _ in range(times):
        assert accounts.sign_in(username, WRONG, address) is None


def enrol(accounts: AccountService, clock: Clock, username: str) -> str:
    """Set up the account's factor; its secret."""
    pending = accounts.sign_in(username, PASSWORD)
    assert pending is not None
    enrolment = accounts.signin.enrolment(pending.token)
    assert enrolment is not None
    code = pyotp.TOTP(enrolment.secret).generate_otp(mfa.step_of(clock()))
    assert accounts.signin.confirm_enrolment(pending.token, code) is not None
    return enrolment.secret


def test_five_failures_lock_the_account_even_for_the_right_password(
    accounts: AccountService, clock: Clock
) -> None:
    fail(accounts, "ther", ACCOUNT_LIMIT - 1)
    clock.t += MINUTE
    fail(accounts, "ther", 1)
    with pytest.raises(Throttled, match="Too many failed attempts to sign in"):
        accounts.sign_in("ther", PASSWORD, HERE)
    with pytest.raises(Throttled):  # from anywhere: the account is locked, not the address
        accounts.sign_in("ther", PASSWORD, THERE)
    assert accounts.sign_in("super", PASSWORD, HERE) is not None  # other accounts are not


def test_the_lock_ends_when_the_failures_are_older_than_the_window(
    accounts: AccountService, clock: Clock
) -> None:
    fail(accounts, "ther", ACCOUNT_LIMIT)
    clock.t += WINDOW_US - MINUTE
    with pytest.raises(Throttled):
        accounts.sign_in("ther", PASSWORD, HERE)
    clock.t += MINUTE
    assert accounts.sign_in("ther", PASSWORD, HERE) is not None


def test_an_unknown_account_is_locked_with_the_same_message(accounts: AccountService) -> None:
    fail(accounts, "nobody", ACCOUNT_LIMIT)
    fail(accounts, "ther", ACCOUNT_LIMIT)
    with pytest.raises(Throttled) as unknown:
        accounts.sign_in("nobody", PASSWORD, HERE)
    with pytest.raises(Throttled) as known:
        accounts.sign_in("ther", PASSWORD, HERE)
    assert str(unknown.value) == str(known.value)


def test_the_account_name_is_compared_without_case(accounts: AccountService) -> None:
    fail(accounts, "THER", ACCOUNT_LIMIT)
    with pytest.raises(Throttled):
        accounts.sign_in("ther", PASSWORD, THERE)


def test_an_address_is_locked_after_twenty_failures_across_accounts(
    accounts: AccountService,
) -> None:
    for i in range(ADDRESS_LIMIT):
        fail(accounts, f"guess-{i}", 1, HERE)
    with pytest.raises(Throttled):
        accounts.sign_in("ther", PASSWORD, HERE)
    assert accounts.sign_in("ther", PASSWORD, THERE) is not None


def test_a_complete_sign_in_clears_the_accounts_count(
    db: Database, keys: Keys, clock: Clock
) -> None:
    accounts = AccountService(db.uow, clock, keys=keys)
    accounts.add_practice("demo", "Synthetic demo")
    accounts.add_user("demo-ther", "demo", "therapist", PASSWORD)
    accounts.signin.waive_mfa("demo")  # the password completes the sign-in
    fail(accounts, "demo-ther", ACCOUNT_LIMIT - 1)
    assert accounts.sign_in("demo-ther", PASSWORD, HERE) is not None
    fail(accounts, "demo-ther", ACCOUNT_LIMIT - 1)
    assert accounts.sign_in("demo-ther", PASSWORD, HERE) is not None


def test_the_right_password_alone_does_not_clear_the_count(
    accounts: AccountService, clock: Clock
) -> None:
    """Else the password would buy endless guesses at the second factor."""
    enrol(accounts, clock, "ther")
    fail(accounts, "ther", ACCOUNT_LIMIT - 1)
    assert accounts.sign_in("ther", PASSWORD, HERE) is not None  # pending
    fail(accounts, "ther", 1)
    with pytest.raises(Throttled):
        accounts.sign_in("ther", PASSWORD, HERE)


def test_wrong_codes_count_and_a_lock_ends_the_pending_sign_in(
    accounts: AccountService, clock: Clock
) -> None:
    secret = enrol(accounts, clock, "ther")
    clock.t += MINUTE
    pending = accounts.sign_in("ther", PASSWORD, HERE)
    assert pending is not None
    assert pending.second_step == "code"
    good = pyotp.TOTP(secret).generate_otp(mfa.step_of(clock()))
    bad = f"{(int(good) + 1) % 1_000_000:06d}"
    for _ in range(ACCOUNT_LIMIT):
        assert accounts.signin.second_factor(pending.token, bad, HERE) is None
    with pytest.raises(Throttled):
        accounts.signin.second_factor(pending.token, good, HERE)
    assert accounts.signin.pending(pending.token) is None
    with pytest.raises(Throttled):
        accounts.sign_in("ther", PASSWORD, HERE)


def test_a_complete_sign_in_with_a_code_clears_the_count(
    accounts: AccountService, clock: Clock
) -> None:
    secret = enrol(accounts, clock, "ther")
    clock.t += MINUTE
    fail(accounts, "ther", ACCOUNT_LIMIT - 1)
    pending = accounts.sign_in("ther", PASSWORD, HERE)
    assert pending is not None
    code = pyotp.TOTP(secret).generate_otp(mfa.step_of(clock()))
    assert accounts.signin.second_factor(pending.token, code, HERE) is not None
    fail(accounts, "ther", ACCOUNT_LIMIT - 1)
    assert accounts.sign_in("ther", PASSWORD, HERE) is not None


def test_failures_are_stored_hashed_and_forgotten_after_the_window(
    db: Database, accounts: AccountService, clock: Clock
) -> None:
    fail(accounts, "ther", 3, HERE)
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT subject FROM login_failures")).all()
    assert len(rows) == 6  # three for the account, three for the address
    dump = " ".join(r[0] for r in rows)
    assert "ther" not in dump
    assert HERE not in dump
    clock.t += WINDOW_US + MINUTE
    fail(accounts, "super", 1, THERE)
    with db.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM login_failures")).scalar_one()
    assert count == 2  # the old ones are gone


def test_two_services_on_one_database_count_together(
    db: Database, accounts: AccountService, clock: Clock, keys: Keys
) -> None:
    """Two web workers: each sees the other's failures."""
    other = AccountService(db.uow, clock, keys=keys)
    fail(accounts, "ther", ACCOUNT_LIMIT - 2)
    fail(other, "ther", 2)
    with pytest.raises(Throttled):
        accounts.sign_in("ther", PASSWORD, HERE)
    with pytest.raises(Throttled):
        other.sign_in("ther", PASSWORD, HERE)
