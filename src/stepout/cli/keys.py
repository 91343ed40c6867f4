"""`stepout keys generate|status|rotate|rewrap|retire`: the key file and the data keys it wraps.

The key file (STEPOUT_SECRET_KEY_FILE) holds the root secret (chain HMAC, checkpoint
signatures, concern links) and numbered encryption keys, one of them active, that wrap each
practice's data key (`stepout.adapters.db.datakeys`). Rotating adds an encryption key version
and re-wraps every data key under it while servers keep running; retiring removes the versions
no data key uses any more. Nothing here prints a secret.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stepout.cli.common import console, database, fail, settings

if TYPE_CHECKING:
    from stepout.adapters.db import Database

keys_app = typer.Typer(
    help="The key file: generate one, rotate its encryption key, retire old versions, status.",
    no_args_is_help=True,
)

KEEP_APART = (
    "A real deployment keeps the key file outside the data directory and backs it up apart "
    "from the database: without it the health data cannot be read."
)
OLD_BACKUPS = (
    "A database backup needs the key versions it was made with: keep a copy of the key file "
    "from before this change with the backups made before it."
)


def _say(message: str) -> None:
    console.print(message, highlight=False)


def _keys(n: int) -> str:
    return f"{n:,} data key{'' if n == 1 else 's'}"


@contextmanager
def _failing_well() -> Iterator[None]:
    """Key file and data key errors as one line each (they name files and versions only)."""
    from stepout.adapters.db.datakeys import DataKeyError
    from stepout.crypto.keyfile import KeyFileError

    try:
        yield
    except (KeyFileError, DataKeyError, OSError) as e:
        fail(str(e))


@keys_app.command("generate")
def generate(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write it (default: STEPOUT_SECRET_KEY_FILE)."),
    ] = None,
) -> None:
    """Make a new key file (readable by its owner only); never overwrites one."""
    from stepout.crypto.keyfile import generate as generate_file

    path = out if out is not None else settings().secret_key_file
    with _failing_well():
        generate_file(path)
    _say(f"Created the key file {path}. {KEEP_APART}")
    if out is not None:
        _say("Name it in STEPOUT_SECRET_KEY_FILE for Stepout to use it.")


@keys_app.command("status")
def status() -> None:
    """The key file's encryption key versions and how many data keys each wraps (no
    secrets)."""
    from stepout.adapters.db import datakeys

    path = settings().secret_key_file
    with database() as db, db.engine.connect() as conn:
        counts = datakeys.versions_in_use(conn)
        generations = datakeys.generations(conn)
    held = db.keys.material.encryption
    _say(f"Key file {path}")
    for version in sorted(set(held) | set(counts)):
        mark = " (active)" if version == db.keys.active_version else ""
        missing = "" if version in held else ": MISSING from the key file"
        _say(f"  version {version}{mark}: wraps {_keys(counts.get(version, 0))}{missing}")
    for generation, count in sorted(generations.items()):
        _say(f"  data key generation {generation}: {count:,} practices")
    _say(KEEP_APART)


@keys_app.command("rotate")
def rotate(
    retire: Annotated[
        bool,
        typer.Option("--retire", help="Then remove the versions no data key uses any more."),
    ] = False,
    no_rewrap: Annotated[
        bool,
        typer.Option(
            "--no-rewrap",
            help="Only add the version to the key file (several machines: copy the file to "
            "each, then run `stepout keys rewrap`).",
        ),
    ] = False,
    data_keys: Annotated[
        bool,
        typer.Option(
            "--data-keys",
            help="Instead, give every practice a new data key for new writes (the older ones "
            "stay for what they encrypted).",
        ),
    ] = False,
) -> None:
    """Add an encryption key version to the key file, make it active, and re-wrap every
    practice's data key under it, in small transactions, while servers keep running."""
    from stepout.adapters.db import datakeys
    from stepout.crypto.keyfile import add_version

    path = settings().secret_key_file
    if data_keys:
        with database() as db, _failing_well():
            added = datakeys.add_generations(db.engine, db.keys)
        _say(f"Added a new data key generation for {added:,} practices.")
        return
    with _failing_well():
        material = add_version(path)
    _say(f"Key file {path}: encryption key version {material.active} added and made active.")
    if not no_rewrap:
        with database() as db, _failing_well():
            _rewrap(db)
            if retire:
                _retire(db, path)
    _say(f"{KEEP_APART} {OLD_BACKUPS}")


@keys_app.command("rewrap")
def rewrap() -> None:
    """Re-wrap every data key under the key file's active version (after `rotate
    --no-rewrap`, once every machine has the new key file)."""
    with database() as db, _failing_well():
        _rewrap(db)


@keys_app.command("retire")
def retire_() -> None:
    """Remove from the key file the encryption key versions no data key uses any more (what
    is left is first re-wrapped under the active version)."""
    with database() as db, _failing_well():
        _retire(db, settings().secret_key_file)
    _say(OLD_BACKUPS)


def _rewrap(db: "Database") -> None:
    from stepout.adapters.db import datakeys

    db.keys.refresh()
    active = db.keys.active_version
    count = datakeys.rewrap(db.engine, db.keys, active)
    _say(f"Re-wrapped {_keys(count)} under version {active}.")


def _retire(db: "Database", path: Path) -> None:
    from stepout.adapters.db import datakeys
    from stepout.crypto.keyfile import drop_versions

    def drop_unused(in_use: set[int]) -> None:
        drop_versions(path, keep=in_use)

    db.keys.refresh()
    before = set(db.keys.material.encryption)
    counts = datakeys.retire_check(db.engine, db.keys, drop_unused)
    active = db.keys.active_version
    if not set(counts) <= {active}:
        used = ", ".join(f"version {v}: {n:,}" for v, n in sorted(counts.items()) if v != active)
        fail(f"not retired: data keys still use older versions ({used})")
    db.keys.refresh()
    dropped = sorted(before - set(db.keys.material.encryption))
    if dropped:
        names = ", ".join(str(v) for v in dropped)
        _say(f"Key file {path}: removed encryption key versions {names}.")
    else:
        _say(f"Key file {path}: no older version to remove.")
