"""Secrets: argon2 password hashes, random bearer tokens (stored only as SHA-256), and the
keyed links a client uses to raise a concern. What a password must be is in `passwords`."""

import hashlib
import hmac
import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from stepout.services.passwords import MIN_PASSWORD_LENGTH as MIN_PASSWORD_LENGTH
from stepout.services.passwords import WeakPassword as WeakPassword
from stepout.services.passwords import check_password

TOKEN_BYTES: Final = 32  # 256 random bits

API_TOKEN: Final = "so_"
ROOM_TOKEN: Final = "sr_"
WEB_SESSION: Final = "sw_"
PENDING_SIGN_IN: Final = "sp_"  # a password given, the second factor still owed

_hasher = PasswordHasher()
# Verified when a username is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH: Final = _hasher.hash(secrets.token_urlsafe(16))


def check_password_strength(password: str, username: str | None = None) -> None:
    """`WeakPassword` for a password that may not be set (see `stepout.services.passwords`)."""
    check_password(password, username)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def concern_code(secret: bytes, session_id: str) -> str:
    """The unguessable part of a session's concern link (HMAC-SHA-256, 128 bits shown)."""
    mac = hmac.new(secret, b"concern:" + session_id.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def concern_code_matches(secret: bytes, session_id: str, code: str) -> bool:
    return hmac.compare_digest(concern_code(secret, session_id), code)
