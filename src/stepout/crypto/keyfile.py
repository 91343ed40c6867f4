"""The key file: where Stepout's secrets live, outside the database.

A small JSON document, readable by its owner only:

    {"stepout_keys": 1, "root": "<base64>", "active": 2,
     "encryption": {"1": "<base64>", "2": "<base64>"}}

It is written atomically (a temporary file beside it, then a rename), so a crash while
rotating leaves either the old file or the new one.
"""

import base64
import contextlib
import os
import secrets
from pathlib import Path
from typing import Any, Final

import orjson

from stepout.crypto.keys import SECRET_BYTES, KeyMaterial, Keys, generated_material
from stepout.files import fsync_folder, open_private

FORMAT: Final = 1


class KeyFileError(ValueError):
    """The key file is missing, unreadable or malformed; the message says which and where."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode(material: KeyMaterial) -> bytes:
    return orjson.dumps(
        {
            "stepout_keys": FORMAT,
            "root": _b64(material.root),
            "active": material.active,
            "encryption": {str(v): _b64(s) for v, s in sorted(material.encryption.items())},
        },
        option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
    )


def decode(raw: bytes, where: str) -> KeyMaterial:
    try:
        doc: Any = orjson.loads(raw)
        if not isinstance(doc, dict) or doc.get("stepout_keys") != FORMAT:
            raise KeyFileError(f"{where}: not a Stepout key file (format {FORMAT})")
        encryption = {
            int(version): _secret(secret, f"encryption.{version}")
            for version, secret in doc["encryption"].items()
        }
        return KeyMaterial(
            root=_secret(doc["root"], "root"),
            encryption=encryption,
            active=int(doc["active"]),
        )
    except KeyFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # The reason names a field, never a secret.
        raise KeyFileError(f"{where}: malformed key file ({type(exc).__name__}: {exc})") from None


def _secret(text: Any, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise ValueError(f"{field}: not base64") from None


def read(path: Path) -> KeyMaterial:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(
            f"{path}: no key file (create one with `stepout keys generate`)"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror})") from None
    return decode(raw, str(path))


def write(path: Path, material: KeyMaterial, *, replace: bool = True) -> None:
    """Write `material` to `path` atomically, owner-readable only. With `replace=False` an
    existing file wins (two processes creating it at once: the first one's is kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = open_private(temporary)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(encode(material))
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            with contextlib.suppress(FileExistsError):  # two processes at once: first one wins
                os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_folder(path.parent)


def generate(path: Path) -> KeyMaterial:
    """Create a new key file at `path`; refuses to overwrite one."""
    if path.exists():
        raise KeyFileError(f"{path}: a key file is already there (it is never overwritten)")
    material = generated_material()
    write(path, material, replace=False)
    return read(path)


def ensure(path: Path) -> tuple[KeyMaterial, bool]:
    """The key file at `path`, created if absent; and whether it was created now."""
    if path.exists():
        return read(path), False
    material = generated_material()
    write(path, material, replace=False)
    stored = read(path)
    return stored, stored.root == material.root


def add_version(path: Path) -> KeyMaterial:
    """Add a new encryption key version to the file and make it the active one."""
    current = read(path)
    version = max(current.encryption) + 1
    material = KeyMaterial(
        root=current.root,
        encryption={**current.encryption, version: secrets.token_bytes(SECRET_BYTES)},
        active=version,
    )
    write(path, material)
    return material


def drop_versions(path: Path, keep: set[int]) -> KeyMaterial:
    """Remove every encryption key version not in `keep` (the active one is always kept)."""
    current = read(path)
    keep = keep | {current.active}
    material = KeyMaterial(
        root=current.root,
        encryption={v: s for v, s in current.encryption.items() if v in keep},
        active=current.active,
    )
    write(path, material)
    return material


def load_keys(path: Path) -> Keys:
    """The derived keys of the file at `path`, re-read on an unknown version."""
    return Keys(read(path), reload=lambda: read(path))
