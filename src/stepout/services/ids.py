"""New record ids: a kind prefix and 26 characters that sort by creation time.

The 26 characters are a 128-bit value in lower-case Crockford base32, laid out as a ULID: 48
bits of milliseconds since the epoch, then 80 random bits (`secrets`). Ids made in different
milliseconds sort by time as text; within one millisecond 80 random bits make a collision
negligible. Ids are names, not secrets: access is checked by practice and role, never by the
id being hard to guess.
"""

import secrets
import time
from typing import Final

SESSION: Final = "s_"
EXIT: Final = "e_"
CONCERN: Final = "k_"

ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford; ASCII order = value order
LENGTH: Final = 26
_RANDOM_BITS: Final = 80
_TIME_BITS: Final = 48


def encode(millis: int, randomness: int) -> str:
    """The 26 characters for `millis` (48 bits) and `randomness` (80 bits)."""
    if not 0 <= millis < 1 << _TIME_BITS or not 0 <= randomness < 1 << _RANDOM_BITS:
        raise ValueError("millis or randomness out of range")
    value = (millis << _RANDOM_BITS) | randomness
    chars = []
    for _ in range(LENGTH):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A fresh id such as `s_01hzx3k2v8...` for the kind `prefix` names."""
    return prefix + encode(time.time_ns() // 1_000_000, secrets.randbits(_RANDOM_BITS))
