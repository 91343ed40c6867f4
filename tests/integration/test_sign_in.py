"""Signing in with a second factor, on both engines: enrolment, codes accepted once, recovery
codes spent once, the sealed TOTP secret, the half-signed-in state, and when browser sessions
end (idle 30 minutes, 12 hours in all, logout, new password, disabled account, MFA reset).
Accounts, passwords and secrets are synthetic."""

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from stepout.adapters.db import Database
from stepout.crypto.keys import Keys, generated_material
from stepout.services import credentials, mfa
from stepout.services.accounts import (
    ABSOLUTE_TIMEOUT_US,
    IDLE_TIMEOUT_US,
    AccountService,
)
from stepout.services.signin import PENDING_TIMEOUT_US, SignIn, SignInExpired
from tests.integration.builders import MINUTE, T0

PASSWORD = "synthetic-pass-0001"
STEP_US = mfa.STEP_SECONDS * 1_000_000


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
    service.add_user("ther", "p1", "therapist", PASSWORD, user_id="t-001")
    service.add_user("super", "p1", "supervisor", PASSWORD)
    return service


def code_at(secret: str, at: int, steps: int = 0) -> str:
    return pyotp.TOTP(secret).generate_otp(mfa.step_of(at) + steps)


def enrol(accounts: AccountService, clock: Clock, username: str) -> tuple[str, list[str]]:
    """Set up the account's factor: (secret, recovery codes). The clock moves on a step."""
    pending = accounts.sign_in(username, PASSWORD)
    assert pending is not None
    assert pending.second_step == "enrol"
    enrolment = accounts.signin.enrolment(pending.token)
    assert enrolment is not None
    done = accounts.signin.confirm_enrolment(pending.token, code_at(enrolment.secret, clock()))
    assert done is not None
    clock.t += STEP_US
    return enrolment.secret, done[1]


def full_sign_in(accounts: AccountService, clock: Clock, secret: str) -> SignIn:
    pending = accounts.sign_in("ther", PASSWORD)
    assert pending is not None
    assert pending.second_step == "code"
    signed = accounts.signin.second_factor(pending.token, code_at(secret, clock()))
    assert signed is not None
    clock.t += STEP_US  # the next sign-in has a fresh code
    return signed


def test_enrolment_shows_one_secret_until_a_first_code_confirms_it(
    accounts: AccountService, clock: Clock
) -> None:
    pending = accounts.sign_in("ther", PASSWORD)
    assert pending is not None
    assert pending.second_step == "enrol"
    assert accounts.web_session(pending.token) is None  # no browser session yet
    first = accounts.signin.enrolment(pending.token)
    again = accounts.signin.enrolment(pending.token)
    assert first is not None
    assert again == first
    assert first.uri.startswith("otpauth://totp/Stepout:ther?secret=" + first.secret)
    wrong = f"{(int(code_at(first.secret, clock())) + 1) % 1_000_000:06d}"
    assert accounts.signin.confirm_enrolment(pending.token, wrong) is None
    done = accounts.signin.confirm_enrolment(pending.token, code_at(first.secret, clock()))
    assert done is not None
    signed, codes = done
    assert signed.second_step is None
    assert len(codes) == mfa.RECOVERY_CODES
    session = accounts.web_session(signed.token)
    assert session is not None
    assert session.user.id == "t-001"
    assert not session.mfa_waived
    # The pending sign-in is spent; the next sign-in asks for a code.
    assert accounts.signin.pending(pending.token) is None
    clock.t += STEP_US
    later = accounts.sign_in("ther", PASSWORD)
    assert later is not None
    assert later.second_step == "code"
    assert accounts.signin.enrolment(later.token) is None  # no second enrolment


def test_a_code_is_accepted_once_and_only_near_its_time(
    accounts: AccountService, clock: Clock
) -> None:
    secret, _ = enrol(accounts, clock, "ther")
    clock.t += STEP_US  # two steps after the enrolment's
    now = clock()
    for steps, accepted in ((2, False), (-2, False), (-1, True), (-1, False), (0, True)):
        pending = accounts.sign_in("ther", PASSWORD)
        assert pending is not None
        result = accounts.signin.second_factor(pending.token, code_at(secret, now, steps))
        assert (result is not None) is accepted, steps
    pending = accounts.sign_in("ther", PASSWORD)
    assert pending is not None
    assert accounts.signin.second_factor(pending.token, code_at(secret, now, 0)) is None
    assert accounts.signin.second_factor(pending.token, code_at(secret, now, 1)) is not None


def test_a_recovery_code_works_once_for_its_own_account(
    accounts: AccountService, clock: Clock
) -> None:
    _, codes = enrol(accounts, clock, "ther")
    _, other_codes = enrol(accounts, clock, "super")
    pending = accounts.sign_in("ther", PASSWORD)
    assert pending is not None
    assert accounts.signin.second_factor(pending.token, other_codes[0]) is None
    assert accounts.signin.second_factor(pending.token, codes[3]) is not None
    pending = accounts.sign_in("ther", PASSWORD)
    assert pending is not None
    assert accounts.signin.second_factor(pending.token, codes[3]) is None
    assert accounts.signin.second_factor(pending.token, f" {codes[4].upper()} ") is not None


def test_the_secret_is_sealed_and_bound_to_its_user(
    db: Database, accounts: AccountService, clock: Clock
) -> None:
    secret, codes = enrol(accounts, clock, "ther")
    enrol(accounts, clock, "super")
    with db.engine.begin() as conn:
        rows = dict(conn.execute(text('SELECT "user", secret FROM mfa_factors')).all())
        hashes = [r[0] for r in conn.execute(text("SELECT code_hash FROM recovery_codes"))]
        assert secret not in rows["t-001"]
        assert not any(c.replace("-", "") in h for c in codes for h in hashes)
        # Moved to another user's row, the sealed secret does not open.
        conn.execute(
            text('UPDATE mfa_factors SET secret = :s WHERE "user" = :u'),
            {"s": rows["t-001"], "u": "super"},
        )
    pending = accounts.sign_in("super", PASSWORD)
    assert pending is not None
    with pytest.raises(mfa.SealedSecretError):
        accounts.signin.second_factor(pending.token, code_at(secret, clock()))


def test_another_key_file_cannot_open_the_secret(keys: Keys) -> None:
    box = mfa.SecretBox(keys)
    sealed = box.seal("t-001", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert box.open("t-001", sealed) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    with pytest.raises(mfa.SealedSecretError):
        mfa.SecretBox(Keys(generated_material())).open("t-001", sealed)
    with pytest.raises(mfa.SealedSecretError):
        box.open("t-002", sealed)


def test_a_pending_sign_in_opens_nothing_and_lasts_15_minutes(
    accounts: AccountService, clock: Clock
) -> None:
    secret, _ = enrol(accounts, clock, "ther")
    pending = accounts.sign_in("ther", PASSWORD)
    assert pending is not None
    assert accounts.web_session(pending.token) is None
    clock.t += PENDING_TIMEOUT_US
    assert accounts.signin.pending(pending.token) is None
    with pytest.raises(SignInExpired):
        accounts.signin.second_factor(pending.token, code_at(secret, clock()))


def test_tokens_carry_at_least_128_random_bits(accounts: AccountService, clock: Clock) -> None:
    secret, _ = enrol(accounts, clock, "ther")
    pending = accounts.sign_in("ther", PASSWORD)
    assert pending is not None
    signed = accounts.signin.second_factor(pending.token, code_at(secret, clock()))
    assert signed is not None
    for token in (pending.token, signed.token):
        body = token[3:]  # the prefix names the kind
        assert len(body) * 6 >= 128  # base64url: six bits a character
    assert len(pending.csrf) * 6 >= 128
    assert pending.token != signed.token  # a new token once the second step is done


def test_a_session_ends_after_30_idle_minutes_or_12_hours(
    accounts: AccountService, clock: Clock
) -> None:
    secret, _ = enrol(accounts, clock, "ther")
    idle = full_sign_in(accounts, clock, secret)
    clock.t += IDLE_TIMEOUT_US - MINUTE
    assert accounts.web_session(idle.token) is not None
    clock.t += IDLE_TIMEOUT_US + 1
    assert accounts.web_session(idle.token) is None

    busy = full_sign_in(accounts, clock, secret)
    start = clock.t - STEP_US
    while clock.t - start < ABSOLUTE_TIMEOUT_US - 20 * MINUTE:
        clock.t += 20 * MINUTE
        assert accounts.web_session(busy.token) is not None
    clock.t = start + ABSOLUTE_TIMEOUT_US
    assert accounts.web_session(busy.token) is None


@pytest.mark.parametrize("ending", ["logout", "password", "disable", "mfa-reset"])
def test_every_session_ends_at_logout_password_change_disable_and_mfa_reset(
    accounts: AccountService, clock: Clock, ending: str
) -> None:
    secret, _ = enrol(accounts, clock, "ther")
    first = full_sign_in(accounts, clock, secret)
    second = full_sign_in(accounts, clock, secret)
    pending = accounts.sign_in("ther", PASSWORD)
    assert pending is not None
    if ending == "logout":
        accounts.sign_out(first.token)
        assert accounts.web_session(first.token) is None
        assert accounts.web_session(second.token) is not None  # only that browser's
        return
    if ending == "password":
        accounts.set_password("ther", "synthetic-pass-0002")
    elif ending == "disable":
        accounts.set_disabled("ther", True)
    else:
        assert accounts.reset_mfa("ther") is True
    for signed in (first, second):
        assert accounts.web_session(signed.token) is None
    assert accounts.signin.pending(pending.token) is None  # the half-signed-in one too
    if ending == "mfa-reset":
        again = accounts.sign_in("ther", PASSWORD)
        assert again is not None
        assert again.second_step == "enrol"  # a new factor, new recovery codes


def test_mfa_reset_of_an_account_without_a_factor_says_so(accounts: AccountService) -> None:
    assert accounts.reset_mfa("ther") is False


def test_the_waiver_is_one_practices_and_shows_on_its_sessions(
    accounts: AccountService, clock: Clock
) -> None:
    accounts.add_practice("demo", "Synthetic demo practice")
    accounts.add_user("demo-ther", "demo", "therapist", PASSWORD)
    accounts.signin.waive_mfa("demo")
    accounts.signin.waive_mfa("demo")  # again: harmless
    assert accounts.signin.waived_practices() == ["Synthetic demo practice"]
    signed = accounts.sign_in("demo-ther", PASSWORD)
    assert signed is not None
    assert signed.second_step is None
    session = accounts.web_session(signed.token)
    assert session is not None
    assert session.mfa_waived
    other = accounts.sign_in("ther", PASSWORD)
    assert other is not None
    assert other.second_step == "enrol"
