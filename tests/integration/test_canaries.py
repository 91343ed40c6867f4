"""Attack 6(d): the raw bytes of a database, its write-ahead log and its backups hold none of
1,000 canary plaintexts written through the import and the live workflow.

Each canary is synthetic and unmistakably fake. A control string written where Stepout does
not encrypt (a practice's name, set by the import from the practice id) must be found in the
same bytes, so that a search that sees nothing is not a search that cannot see.
"""

import shutil
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from stepout.adapters.db import Database
from stepout.crypto.keys import Keys
from tests.integration.sealing import Written, canaries, write_texts

CANARIES = 1_000


def _write(db: Database) -> tuple[list[str], str]:
    texts = canaries(CANARIES)
    control = f"control-{texts[0].split('-')[3]}"  # the run's token: plain, and unique
    written = write_texts(db, texts, practice=control)
    assert sorted(written.texts()) == sorted(texts)
    _read_back(db, written)
    return texts, control


def _read_back(db: Database, written: Written) -> None:
    """The canaries are really stored: the records show every one."""
    with db.uow(read_only=True) as uow:
        for (entity, record, field), expected in written.fields.items():
            assert getattr(getattr(uow.records, entity)(record), field) == expected


def _found(texts: list[str], data: bytes) -> list[str]:
    return [t for t in texts if t.encode() in data]


def _backup(url: str, out: Path) -> None:
    """`stepout backup`'s copy where it exists, else SQLite's backup API."""
    try:
        from stepout.adapters.db.backup import backup
    except ImportError:
        source, target = sqlite3.connect(url.removeprefix("sqlite:///")), sqlite3.connect(out)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return
    backup(url, out)


def test_no_canary_in_the_sqlite_file_its_wal_or_a_backup(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "data" / "stepout.db"
    url = f"sqlite:///{path}"
    db = Database.open(url, keys=keys)
    try:
        texts, control = _write(db)
        # While the database is open its write-ahead log holds the latest pages.
        files = {"database": path.read_bytes()}
        wal = Path(f"{path}-wal")
        if wal.exists():
            files["wal"] = wal.read_bytes()
        _backup(url, tmp_path / "backup.db")
        files["backup"] = (tmp_path / "backup.db").read_bytes()
        api_copy = tmp_path / "api-copy.db"
        source, target = sqlite3.connect(path), sqlite3.connect(api_copy)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        files["backup API copy"] = api_copy.read_bytes()
    finally:
        db.dispose()
    files["database, closed"] = path.read_bytes()  # after the last checkpoint
    assert control.encode() in files["database, closed"]
    assert control.encode() in files["backup"]
    for name, data in files.items():
        assert _found(texts, data) == [], name


@pytest.mark.postgres
def test_no_canary_in_a_copy_of_every_postgresql_table_or_a_dump(
    postgres_url: str, keys: Keys, tmp_path: Path
) -> None:
    db = Database.open(postgres_url, keys=keys, migrate=False)
    try:
        db.migrate()
        texts, control = _write(db)
    finally:
        db.dispose()
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    copies: dict[str, bytes] = {}
    with psycopg.connect(conninfo) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        for table in tables:
            with conn.cursor().copy(
                sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(table))
            ) as copy:
                copies[table] = b"".join(bytes(chunk) for chunk in copy)
    assert {"events", "exits", "concerns", "amendments", "data_keys"} <= set(copies)
    everything = b"\n".join(copies.values())
    assert control.encode() in everything
    for table, data in copies.items():
        assert _found(texts, data) == [], table
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return
    dump = subprocess.run(
        [pg_dump, "--format=plain", "--no-password", f"--dbname={conninfo}"],
        capture_output=True,
        check=True,
    ).stdout
    assert control.encode() in dump
    assert _found(texts, dump) == []
    # `stepout backup`'s dump (custom format, compressed), read back as plain SQL.
    pg_restore = shutil.which("pg_restore")
    try:
        from stepout.adapters.db.backup import backup
    except ImportError:
        return
    if pg_restore is None:
        return
    out = tmp_path / "backup.dump"
    backup(postgres_url, out)
    restored = subprocess.run(
        [pg_restore, "--file=-", str(out)], capture_output=True, check=True
    ).stdout
    assert control.encode() in restored
    assert _found(texts, restored) == []
