"""What a password must be: long enough, varied enough, not a common one (compared without
regard to case, nor one padded with digits or symbols, nor one repeated), and not containing the
username. Every refusal says why and never repeats the password."""

from importlib import resources

import pytest

from stepout.services import credentials
from stepout.services.passwords import (
    WeakPassword,
    check_password,
    common_passwords,
    is_common,
)


def test_the_shipped_list_holds_ten_thousand_common_passwords_with_its_licence() -> None:
    common = common_passwords()
    assert len(common) == 10_000
    assert {"123456", "password", "qwerty", "iloveyou", "1qaz2wsx3edc"} <= common
    assert all(p == p.casefold() for p in common)
    data = resources.files("stepout.services").joinpath("data")
    licence = data.joinpath("common-passwords.LICENSE.txt").read_text("utf-8")
    assert "MIT License" in licence
    assert "zxcvbn" in licence


@pytest.mark.parametrize(
    "password",
    [
        "1qaz2wsx3edc",  # on the list as it is
        "1QAZ2WSX3EDC",  # in capitals
        "QazWsxEdcRfv",  # mixed case
        "password1234",  # a common one with digits added
        "Password!2026",
        "2026-dragon!!",  # and before
        "sunshinesunshine",  # repeated
        "MonkeyMonkeyMonkey",
    ],
)
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    assert is_common(password)
    with pytest.raises(WeakPassword, match="most common passwords") as refused:
        check_password(password)
    assert password not in str(refused.value)


@pytest.mark.parametrize(
    "password",
    [
        "synthetic-pass-0001",
        "correct horse battery staple",
        "Tide-pool 7 lantern",
        "demo-3f9a1c2b7e",
    ],
)
def test_other_passwords_of_twelve_characters_or_more_are_accepted(password: str) -> None:
    check_password(password, "dana")


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short-pw1", "at least 12 characters"),
        ("aaaaaaaaaaaaaaaa", "more than a few different characters"),
        ("abababababababab", "more than a few different characters"),
    ],
)
def test_short_or_samey_passwords_are_refused_saying_why(password: str, why: str) -> None:
    with pytest.raises(WeakPassword, match=why) as refused:
        check_password(password)
    assert password not in str(refused.value)


@pytest.mark.parametrize("password", ["dana-river-2026x", "my DANA password", "xxDana.Rivers9"])
def test_the_username_may_not_be_in_the_password(password: str) -> None:
    with pytest.raises(WeakPassword, match="may not contain the username") as refused:
        check_password(password, "Dana")
    assert password not in str(refused.value)
    check_password(password, "someone-else")


def test_a_very_short_username_is_not_looked_for() -> None:
    check_password("Tide-pool 7 lantern", "al")  # "al" is too common a string to refuse


def test_the_credentials_check_is_the_same_rule() -> None:
    with pytest.raises(credentials.WeakPassword, match="most common"):
        credentials.check_password_strength("Iloveyou1234")
    with pytest.raises(credentials.WeakPassword, match="username"):
        credentials.check_password_strength("alice-in-2026-x", "alice")
    assert credentials.MIN_PASSWORD_LENGTH == 12
