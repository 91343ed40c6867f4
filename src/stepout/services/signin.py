"""Signing in to the pages, in two steps.

1. The password (`sign_in`). Right, and the account's practice waives MFA (the demo only): a
   browser session at once. Otherwise a *pending* sign-in: a token that opens the second step's
   pages and nothing else, for 15 minutes.
2. The second factor: a TOTP code or a one-time recovery code (`second_factor`), or, for an
   account with no factor yet, enrolment (`enrolment`, then `confirm_enrolment` with a first
   code, which returns the ten recovery codes to show once). Then the browser session.

Every wrong password or code counts towards throttling (`throttling`); a complete sign-in clears
the account's count. A code is accepted once: its time step is recorded, and a code of that
step or an earlier one is refused afterwards.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from stepout.crypto.keys import Keys
from stepout.domain.accounts import User
from stepout.domain.instants import MICROS_PER_MINUTE, Instant
from stepout.services import credentials, mfa, throttling
from stepout.services.ports import Accounts, AccountsUnitOfWork, WebSession

PENDING_TIMEOUT_US: Final = 15 * MICROS_PER_MINUTE

SecondStep = Literal["code", "enrol"]


class SignInExpired(Exception):
    """The pending sign-in is unknown, ended or too old: start again with the password."""


@dataclass(frozen=True, slots=True)
class SignIn:
    """What a step of signing in gives the browser: a token for its cookie and the CSRF token
    of its forms (both shown once). With `second_step`, the token is a pending sign-in's,
    which opens only that step; without, a browser session's."""

    token: str
    csrf: str
    user: User
    second_step: SecondStep | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """A browser that gave the right password and owes its second factor."""

    user: User
    csrf: str
    second_step: SecondStep


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A new TOTP factor to set up: the secret (for typing in) and its otpauth:// URI (for
    the QR code). It counts once a first code confirms it."""

    secret: str
    uri: str


class SignInService:
    def __init__(
        self,
        uow: Callable[..., AccountsUnitOfWork],
        clock: Callable[[], Instant],
        keys: Keys | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._box = None if keys is None else mfa.SecretBox(keys)

    def _secrets(self) -> mfa.SecretBox:
        if self._box is None:
            raise RuntimeError("multi-factor sign-in needs the key file's keys")
        return self._box

    # Step 1: the password

    def sign_in(self, username: str, password: str, address: str = "") -> SignIn | None:
        """After the right password of an enabled account: a browser session (MFA waived) or
        a pending sign-in that names its second step. None for wrong credentials; `Throttled`
        after too many failures, whatever the password."""
        at = self._clock()
        with self._uow() as uow:
            accounts = uow.accounts
            throttling.check(accounts, username, address, at)
            found = accounts.user_by_username(username)
            user, hashed = found if found is not None else (None, None)
            ok = credentials.verify_password(hashed, password)
            if user is None or not ok or user.disabled:
                throttling.record_failure(accounts, username, address, at)
                uow.commit()
                return None
            if accounts.mfa_waived(user.practice):
                throttling.clear(accounts, username)
                signed = _open_session(accounts, user, at)
            else:
                factor = accounts.mfa_factor(user.id)
                step: SecondStep = "code" if factor is not None and factor.confirmed else "enrol"
                token = credentials.new_token(credentials.PENDING_SIGN_IN)
                csrf = secrets.token_urlsafe(24)
                accounts.add_pending_sign_in(credentials.token_hash(token), user.id, csrf, at)
                signed = SignIn(token, csrf, user, step)
            uow.commit()
        return signed

    # Step 2: the second factor

    def pending(self, token: str) -> Pending | None:
        """The pending sign-in of a cookie value, while it is open and under 15 minutes old."""
        with self._uow(read_only=True) as uow:
            found = self._live_pending(uow.accounts, token, self._clock())
            if found is None:
                return None
            factor = uow.accounts.mfa_factor(found.user.id)
        step: SecondStep = "code" if factor is not None and factor.confirmed else "enrol"
        return Pending(found.user, found.csrf, step)

    def enrolment(self, token: str) -> Enrolment | None:
        """The factor to set up for a pending sign-in with none: the same one on every call
        until it is confirmed (the person may have scanned it already). None when the account
        already has a confirmed factor (then it asks for a code, and enrolling again needs
        `stepout users mfa-reset`). `SignInExpired` without a live pending sign-in."""
        at = self._clock()
        box = self._secrets()
        with self._uow() as uow:
            found = self._live_pending(uow.accounts, token, at)
            if found is None:
                raise SignInExpired()
            user = found.user
            factor = uow.accounts.mfa_factor(user.id)
            if factor is not None and factor.confirmed:
                return None
            if factor is not None:
                secret = box.open(user.id, factor.sealed)
            else:
                secret = mfa.new_secret()
                uow.accounts.set_mfa_factor(user.id, box.seal(user.id, secret), at)
                uow.commit()
        return Enrolment(secret, mfa.otpauth_uri(secret, user.username))

    def confirm_enrolment(
        self, token: str, code: str, address: str = ""
    ) -> tuple[SignIn, list[str]] | None:
        """A first code confirms the new factor: the browser session and the ten recovery
        codes (shown once, stored hashed). None for a wrong code."""
        at = self._clock()
        box = self._secrets()
        with self._uow() as uow:
            accounts = uow.accounts
            found = self._checked_pending(uow, token, address, at)
            user = found.user
            factor = accounts.mfa_factor(user.id)
            if factor is None or factor.confirmed:
                raise SignInExpired()
            step = mfa.matching_step(box.open(user.id, factor.sealed), code, at)
            if step is None or not accounts.use_mfa_step(user.id, step):
                throttling.record_failure(accounts, user.username, address, at)
                uow.commit()
                return None
            accounts.confirm_mfa_factor(user.id, at)
            codes = mfa.new_recovery_codes()
            hashes = [h for c in codes if (h := mfa.recovery_hash(user.id, c)) is not None]
            accounts.set_recovery_codes(user.id, hashes, at)
            signed = _finish(accounts, token, user, at)
            uow.commit()
        return signed, codes

    def second_factor(self, token: str, code: str, address: str = "") -> SignIn | None:
        """A TOTP code (not used before) or an unused recovery code: the browser session.
        None for a wrong, replayed or spent code."""
        at = self._clock()
        box = self._secrets()
        with self._uow() as uow:
            accounts = uow.accounts
            found = self._checked_pending(uow, token, address, at)
            user = found.user
            factor = accounts.mfa_factor(user.id)
            if factor is None or not factor.confirmed:
                raise SignInExpired()
            if mfa.is_totp_code(code):
                step = mfa.matching_step(box.open(user.id, factor.sealed), code, at)
                ok = step is not None and accounts.use_mfa_step(user.id, step)
            else:
                hashed = mfa.recovery_hash(user.id, code)
                ok = hashed is not None and accounts.use_recovery_code(user.id, hashed, at)
            if not ok:
                throttling.record_failure(accounts, user.username, address, at)
                uow.commit()
                return None
            signed = _finish(accounts, token, user, at)
            uow.commit()
        return signed

    def cancel(self, token: str) -> None:
        """End a pending sign-in (the person chose to start again)."""
        with self._uow() as uow:
            uow.accounts.end_pending_sign_in(credentials.token_hash(token), self._clock())
            uow.commit()

    # The demo's waiver

    def waive_mfa(self, practice: str) -> None:
        """Let the practice's staff sign in with a password only. For the demo practice
        alone: only `stepout demo` calls this, and the pages say so on screen."""
        with self._uow() as uow:
            uow.accounts.waive_mfa(practice, self._clock())
            uow.commit()

    def waived_practices(self) -> list[str]:
        """The names of the practices that waive MFA (the demo's), for the sign-in page."""
        with self._uow(read_only=True) as uow:
            waived = uow.accounts.waived_practices()
            found = uow.records.practices(waived) if waived else {}
        return [found[p].name if p in found else p for p in waived]

    # Helpers

    def _live_pending(self, accounts: Accounts, token: str, at: Instant) -> WebSession | None:
        found = accounts.pending_sign_in(credentials.token_hash(token))
        if found is None or at - found.created >= PENDING_TIMEOUT_US or at < found.created:
            return None
        return found

    def _checked_pending(
        self, uow: AccountsUnitOfWork, token: str, address: str, at: Instant
    ) -> WebSession:
        """The live pending sign-in, unless throttled: then it ends (the password is asked
        again after the wait) and `Throttled` is raised."""
        found = self._live_pending(uow.accounts, token, at)
        if found is None:
            raise SignInExpired()
        try:
            throttling.check(uow.accounts, found.user.username, address, at)
        except throttling.Throttled:
            uow.accounts.end_pending_sign_in(credentials.token_hash(token), at)
            uow.commit()
            raise
        return found


def _open_session(accounts: Accounts, user: User, at: Instant) -> SignIn:
    token = credentials.new_token(credentials.WEB_SESSION)
    csrf = secrets.token_urlsafe(24)
    accounts.add_web_session(credentials.token_hash(token), user.id, csrf, at)
    return SignIn(token, csrf, user)


def _finish(accounts: Accounts, token: str, user: User, at: Instant) -> SignIn:
    """The second step passed: the pending sign-in ends, the account's failures are cleared
    and a browser session (a new token) begins."""
    accounts.end_pending_sign_in(credentials.token_hash(token), at)
    throttling.clear(accounts, user.username)
    return _open_session(accounts, user, at)
