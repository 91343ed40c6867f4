"""The keys Stepout derives from its key file, and how they are derived.

One key file (`STEPOUT_SECRET_KEY_FILE`, see `keyfile`) holds two kinds of secret:

- the *root* secret, never rotated, from which HKDF derives the ledger's and the audit trail's
  chain key (HMAC-SHA256), the checkpoint signing key (Ed25519) and the key that signs clients'
  concern links. Changing it would mean re-signing history, which an append-only ledger cannot
  do; the signed checkpoints kept elsewhere are what anchor history if it ever leaked.
- numbered *encryption* secrets, one of them active: each derives a key-encryption key (KEK)
  that wraps the practices' data keys (see `stepout.adapters.db.fieldcrypt`). `stepout keys
  rotate` adds a version and re-wraps every data key under it.

Derivation labels are fixed strings: changing one changes every derived key.
"""

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_BYTES: Final = 32

CHAIN_LABEL: Final = b"stepout/chain-hmac/1"
CHECKPOINT_LABEL: Final = b"stepout/checkpoint-ed25519/1"
LINK_LABEL: Final = b"stepout/concern-link/1"
KEK_LABEL: Final = b"stepout/key-encryption-key/1"


class UnknownKeyVersion(LookupError):
    """Data names an encryption key version the key file does not hold."""


def derive(secret: bytes, label: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 of `secret` for one purpose (`label`)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(secret)


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """What a key file holds: the root secret and the numbered encryption secrets."""

    root: bytes
    encryption: Mapping[int, bytes]
    active: int

    def __post_init__(self) -> None:
        if len(self.root) < SECRET_BYTES:
            raise ValueError(f"the root secret needs at least {SECRET_BYTES} bytes")
        if self.active not in self.encryption:
            raise ValueError(f"the active encryption key {self.active} is not in the key file")
        for version, secret in self.encryption.items():
            if version < 1 or len(secret) < SECRET_BYTES:
                raise ValueError(f"encryption key {version}: needs a version ≥ 1 and 32 bytes")


@dataclass(slots=True)
class Keys:
    """The derived keys, built once per process from the key material.

    `reload`, when given, re-reads the key file: a version this process has not seen (a
    rotation done by `stepout keys rotate` while the server runs) is looked for there once
    before `UnknownKeyVersion` is raised."""

    material: KeyMaterial
    reload: Callable[[], KeyMaterial] | None = None
    chain_key: bytes = field(init=False)
    link_key: bytes = field(init=False)
    _signing: Ed25519PrivateKey = field(init=False)
    _keks: dict[int, bytes] = field(init=False)

    def __post_init__(self) -> None:
        self._adopt(self.material)

    def _adopt(self, material: KeyMaterial) -> None:
        self.material = material
        self.chain_key = derive(material.root, CHAIN_LABEL)
        self.link_key = derive(material.root, LINK_LABEL)
        self._signing = Ed25519PrivateKey.from_private_bytes(
            derive(material.root, CHECKPOINT_LABEL)
        )
        self._keks = {v: derive(s, KEK_LABEL) for v, s in material.encryption.items()}

    @property
    def active_version(self) -> int:
        return self.material.active

    def kek(self, version: int) -> bytes:
        """The key-encryption key of `version` (re-reading the key file once if unknown)."""
        kek = self._keks.get(version)
        if kek is None and self.reload is not None:
            fresh = self.reload()
            if fresh.root != self.material.root:
                raise ValueError("the key file now holds another root secret")
            self._adopt(fresh)
            kek = self._keks.get(version)
        if kek is None:
            raise UnknownKeyVersion(f"encryption key version {version} is not in the key file")
        return kek

    def refresh(self) -> None:
        """Re-read the key file now (after a rotation in another process)."""
        if self.reload is not None:
            self._adopt(self.reload())

    def chain_hmac(self, message: bytes) -> str:
        return hmac.new(self.chain_key, message, hashlib.sha256).hexdigest()

    def sign(self, message: bytes) -> bytes:
        return self._signing.sign(message)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._signing.public_key()


def generated_material() -> KeyMaterial:
    """Fresh key material: a random root and encryption key version 1."""
    import secrets

    return KeyMaterial(
        root=secrets.token_bytes(SECRET_BYTES),
        encryption={1: secrets.token_bytes(SECRET_BYTES)},
        active=1,
    )
