"""Login throttling, kept in the database so that every web worker counts the same failures.

A failed password or second-factor code counts against the account name and against the
address it came from. With 5 failures of an account, or 20 from an address, in the last 15
minutes, sign-in is refused until the oldest of them is 15 minutes old; the refusal reads the
same whether or not the account exists. A complete sign-in clears the account's count.
Accounts and addresses are stored as SHA-256 hashes, never as typed.
"""

import hashlib
from typing import Final

from stepout.domain.instants import MICROS_PER_MINUTE, Instant
from stepout.services import ids
from stepout.services.ports import Accounts

WINDOW_MINUTES: Final = 15
WINDOW_US: Final = WINDOW_MINUTES * MICROS_PER_MINUTE
ACCOUNT_LIMIT: Final = 5
ADDRESS_LIMIT: Final = 20
FAILURE_ID: Final = "lf_"


class Throttled(Exception):
    """Too many recent failures for this account or address: sign-in is refused for now."""

    def __init__(self) -> None:
        super().__init__(
            "Too many failed attempts to sign in. "
            f"Please wait {WINDOW_MINUTES} minutes and try again."
        )


def _subject(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


def account_subject(username: str) -> str:
    return _subject("account", username.strip().casefold())


def address_subject(address: str) -> str:
    return _subject("address", address.strip())


def check(accounts: Accounts, username: str, address: str, at: Instant) -> None:
    """Raise `Throttled` while the account or the address has too many recent failures."""
    since = at - WINDOW_US
    if accounts.login_failures_since(account_subject(username), since) >= ACCOUNT_LIMIT:
        raise Throttled()
    if address and accounts.login_failures_since(address_subject(address), since) >= ADDRESS_LIMIT:
        raise Throttled()


def record_failure(accounts: Accounts, username: str, address: str, at: Instant) -> None:
    """Count a failed password or code (and forget failures older than the window)."""
    accounts.expire_login_failures(at - WINDOW_US)
    accounts.add_login_failure(ids.new_id(FAILURE_ID), account_subject(username), at)
    if address:
        accounts.add_login_failure(ids.new_id(FAILURE_ID), address_subject(address), at)


def clear(accounts: Accounts, username: str) -> None:
    """A complete sign-in: the account starts afresh (the address keeps its count)."""
    accounts.clear_login_failures(account_subject(username))
