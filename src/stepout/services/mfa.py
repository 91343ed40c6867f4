"""The second factor of a staff sign-in: TOTP (RFC 6238: six digits, 30-second steps) with a
secret that is stored sealed, and one-time recovery codes that are stored as hashes.

The secret is sealed with AES-GCM under a key derived from the key file's root secret, with the
user id as associated data: a sealed secret copied to another user's row does not open.
"""

import base64
import hashlib
import hmac
import os
import secrets
from typing import Final

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stepout.crypto.keys import Keys, derive
from stepout.domain.instants import Instant

ISSUER: Final = "Stepout"
STEP_SECONDS: Final = 30
DIGITS: Final = 6
DRIFT_STEPS: Final = 1  # a code of the step before or after is accepted too (clock drift)
SECRET_LABEL: Final = b"stepout/mfa-secret/1"
NONCE_BYTES: Final = 12

RECOVERY_CODES: Final = 10
RECOVERY_GROUPS: Final = 4
RECOVERY_GROUP_LENGTH: Final = 4
# No 0/o, 1/l/i: read off a sheet of paper. 31 symbols, 16 of them: 79 random bits a code.
RECOVERY_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"


class SealedSecretError(ValueError):
    """A stored TOTP secret does not open with this key file for this user."""


def new_secret() -> str:
    """A fresh TOTP secret: 160 random bits, base32 (what authenticator apps expect)."""
    return pyotp.random_base32()


def otpauth_uri(secret: str, username: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=ISSUER
    )


def step_of(at: Instant) -> int:
    """The TOTP time step of an instant (microseconds since the epoch)."""
    return at // 1_000_000 // STEP_SECONDS


def clean_code(code: str) -> str:
    """What the person typed, without spaces and dashes, lower-cased."""
    return "".join(c for c in code if not c.isspace() and c != "-").lower()


def is_totp_code(code: str) -> bool:
    cleaned = clean_code(code)
    return len(cleaned) == DIGITS and cleaned.isascii() and cleaned.isdigit()


def matching_step(secret: str, code: str, at: Instant) -> int | None:
    """The time step whose code `code` is (the current one, or one either side), else None.
    Every candidate is compared, in constant time."""
    if not is_totp_code(code):
        return None
    cleaned = clean_code(code).encode()
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now = step_of(at)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), cleaned):
            found = step
    return found


class SecretBox:
    """Seals and opens TOTP secrets with the key file's MFA key."""

    def __init__(self, keys: Keys) -> None:
        self._aead = AESGCM(derive(keys.material.root, SECRET_LABEL))

    @staticmethod
    def _bound(user_id: str) -> bytes:
        return SECRET_LABEL + b"\x00" + user_id.encode()

    def seal(self, user_id: str, secret: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), self._bound(user_id))
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, user_id: str, sealed: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._bound(user_id))
        except (InvalidTag, ValueError):
            raise SealedSecretError(
                "the stored MFA secret does not open with this key file"
            ) from None
        return plain.decode()


def new_recovery_codes() -> list[str]:
    """Ten fresh codes, shown once, like `k7mp-2qx9-...`."""
    return [
        "-".join(
            "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LENGTH))
            for _ in range(RECOVERY_GROUPS)
        )
        for _ in range(RECOVERY_CODES)
    ]


def recovery_hash(user_id: str, code: str) -> str | None:
    """The stored form of a recovery code (SHA-256, bound to the user); None for input that
    cannot be one."""
    cleaned = clean_code(code)
    if len(cleaned) != RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH or not cleaned.isascii():
        return None
    return hashlib.sha256(f"recovery\x00{user_id}\x00{cleaned}".encode()).hexdigest()
