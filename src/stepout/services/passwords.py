"""What makes a password acceptable: at least 12 characters, more than a few of them
different, not one of the 10,000 most common passwords (nor one of them with digits or symbols
around it, nor one repeated), and not containing the username. Every refusal says why and never
repeats the password."""

import string
from functools import cache
from importlib import resources
from typing import Final

MIN_PASSWORD_LENGTH: Final = 12
MIN_DISTINCT: Final = 4
MIN_USERNAME_IN_PASSWORD: Final = 3  # shorter usernames are too common a string to refuse
COMMON_LIST: Final = "common-passwords.txt"
_PADDING: Final = string.digits + string.punctuation + string.whitespace


class WeakPassword(ValueError):
    """A password Stepout refuses to set; the message says why (never the password)."""


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lower-cased (`data/common-passwords.txt`, licence beside it)."""
    text = resources.files("stepout.services").joinpath("data", COMMON_LIST).read_text("utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip())


def is_common(password: str) -> bool:
    """Whether the password, compared without regard to case, is a common one: as it is,
    with digits, symbols or spaces added before or after, or one repeated."""
    folded = password.casefold()
    common = common_passwords()
    core = folded.strip(_PADDING)
    return folded in common or (core != "" and core in common) or _repeats_of(folded) in common


def _repeats_of(text: str) -> str:
    """The shortest string that `text` repeats (`text` itself when it repeats none)."""
    period = (text + text).find(text, 1)
    return text[:period] if 0 < period < len(text) else text


def check_password(password: str, username: str | None = None) -> None:
    """Raise `WeakPassword` saying why the password may not be set."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if len(set(password)) < MIN_DISTINCT:
        raise WeakPassword("A password needs more than a few different characters.")
    if is_common(password):
        raise WeakPassword(
            "That password is on the list of the most common passwords; choose another."
        )
    name = (username or "").strip().casefold()
    if len(name) >= MIN_USERNAME_IN_PASSWORD and name in password.casefold():
        raise WeakPassword("A password may not contain the username.")
