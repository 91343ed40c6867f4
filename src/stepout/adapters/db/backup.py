"""`stepout backup`: a consistent copy of a live database, written durably.

- SQLite: the online backup API of the `sqlite3` module copies every page inside one read
  transaction, so the copy is one consistent state of the database even while writers commit
  (WAL mode lets them). The copy is a single file in rollback-journal mode, checked with
  `PRAGMA quick_check`, fsynced, then renamed into place (and its folder fsynced).
- PostgreSQL: `pg_dump --format=custom`, which reads everything in one snapshot. The dump is
  listed back with `pg_restore --list` (a truncated file fails there), fsynced and renamed into
  place. Without `pg_dump` on the PATH it fails and says what to install.

Either way the output is first written beside its final name (`<name>.partial`), so a backup
cut short never looks like a finished one. The key file is not part of a backup: it must be
backed up apart (docs/operations.md, "Backups").
"""

import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy.engine import URL

from stepout.adapters.db.engine import BUSY_TIMEOUT_MS, is_memory, normalize_url
from stepout.files import fsync_folder, fsync_path, open_private

PARTIAL: Final = ".partial"


class BackupError(RuntimeError):
    """The backup could not be made; the message says why (no partial file is left)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    engine: str  # "sqlite" or "postgresql"
    size: int  # bytes
    seconds: float


def backup(url: str | URL, out: Path) -> BackupResult:
    """Copy the database at `url` to `out` (which must not exist yet)."""
    parsed = normalize_url(url)
    if out.exists():
        raise BackupError(f"{out} already exists: choose a new name (a date in it helps)")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a folder")
    partial = out.with_name(out.name + PARTIAL)
    started = time.perf_counter()
    partial.unlink(missing_ok=True)
    os.close(open_private(partial))
    try:
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            _sqlite(parsed, partial)
        elif backend == "postgresql":
            _pg_dump(parsed, partial)
        else:  # pragma: no cover - create_engine_for refuses these first
            raise BackupError(f"cannot back up a {backend} database")
        fsync_path(partial)
        partial.replace(out)
        fsync_folder(out.parent)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(out, backend, out.stat().st_size, time.perf_counter() - started)


def _sqlite(url: URL, partial: Path) -> None:
    if is_memory(url) or not url.database:
        raise BackupError("an in-memory SQLite database cannot be backed up")
    source_path = Path(url.database).expanduser()
    if not source_path.is_file():
        raise BackupError(f"there is no database at {source_path}")
    source = sqlite3.connect(source_path)  # read only by use: a WAL reader needs its -shm
    try:
        source.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        target = sqlite3.connect(partial)
        try:
            # pages=-1: every page in one step, inside one read transaction of the source.
            source.backup(target, pages=-1)
            target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            verdict = target.execute("PRAGMA quick_check").fetchone()
            if verdict is None or verdict[0] != "ok":
                raise BackupError("the copy fails SQLite's quick_check")
        finally:
            target.close()
    except sqlite3.Error as e:
        raise BackupError(f"SQLite could not copy the database: {e}") from None
    finally:
        source.close()


def pg_conninfo(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for `url` without its password, and the environment that
    carries the password (PGPASSWORD: never on a command line, which `ps` shows)."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql")._replace(password=None)  # set() ignores None
    return plain.render_as_string(hide_password=False), env


def _pg_dump(url: URL, partial: Path) -> None:
    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    if pg_dump is None or pg_restore is None:
        raise BackupError(
            "pg_dump and pg_restore are not installed: install the PostgreSQL client of the "
            "server's major version (Debian: apt-get install postgresql-client), or see "
            "docs/operations.md, Backups, for backing up on the database server"
        )
    conninfo, env = pg_conninfo(url)
    # Row-level security (0007) shows a transaction only its practice's rows: a backup is of
    # every practice.
    env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c stepout.practice=*".strip()
    dump = subprocess.run(
        [pg_dump, "--format=custom", "--no-password", "--enable-row-security",
         f"--file={partial}", f"--dbname={conninfo}"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if dump.returncode != 0:
        raise BackupError(f"pg_dump failed: {_last_line(dump.stderr)}")
    listing = subprocess.run(
        [pg_restore, "--list", str(partial)], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0 or "TABLE DATA public events" not in listing.stdout:
        raise BackupError(f"the dump does not read back: {_last_line(listing.stderr)}")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
