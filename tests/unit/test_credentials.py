"""Passwords, tokens and concern links."""

import pytest

from stepout.services import credentials


def test_a_password_hash_verifies_only_its_password() -> None:
    hashed = credentials.hash_password("synthetic-pass-0001")
    assert hashed.startswith("$argon2")
    assert credentials.verify_password(hashed, "synthetic-pass-0001")
    assert not credentials.verify_password(hashed, "synthetic-pass-0002")
    assert not credentials.verify_password(None, "synthetic-pass-0001")
    assert not credentials.verify_password("not a hash", "synthetic-pass-0001")


@pytest.mark.parametrize("weak", ["short", "aaaaaaaaaaaaaaaa", "abababababababab"])
def test_weak_passwords_are_refused(weak: str) -> None:
    with pytest.raises(credentials.WeakPassword):
        credentials.check_password_strength(weak)


def test_tokens_carry_256_random_bits_and_are_stored_as_sha256() -> None:
    token = credentials.new_token(credentials.API_TOKEN)
    assert token.startswith("so_")
    assert len(token) >= 3 + 43
    assert token != credentials.new_token(credentials.API_TOKEN)
    assert len(credentials.token_hash(token)) == 64
    assert credentials.token_hash(token) != token


def test_a_concern_code_belongs_to_one_session_and_one_secret() -> None:
    secret, other = b"k" * 32, b"j" * 32
    code = credentials.concern_code(secret, "s-1")
    assert len(code) == 32
    assert credentials.concern_code_matches(secret, "s-1", code)
    assert not credentials.concern_code_matches(secret, "s-2", code)
    assert not credentials.concern_code_matches(other, "s-1", code)
