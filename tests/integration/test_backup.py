"""`stepout backup` on both engines: a consistent copy taken while a writer declares exits,
restored (SQLite: the file itself; PostgreSQL: pg_restore into a fresh database), verifies
against the checkpoint taken just before, and holds every exit acknowledged before it began."""

import secrets
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from typer.testing import CliRunner

from stepout.adapters.db import Database, tenancy
from stepout.adapters.db.backup import BackupError, backup, pg_conninfo
from stepout.adapters.db.engine import normalize_url
from stepout.cli import app
from stepout.crypto.keys import Keys
from tests.conftest import service_unavailable
from tests.tampering import live_session, populate


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


class Writer(threading.Thread):
    """Live sessions with an exit each, one after another, until stopped; `acknowledged`
    holds each exit whose commands all returned."""

    def __init__(self, db: Database) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.acknowledged: list[str] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        with tenancy.scope(tenancy.ALL):
            try:
                i = 0
                while not self.stop.is_set():
                    self.acknowledged.append(live_session(self.db, f"t-writer-{i % 7}"))
                    i += 1
            except BaseException as e:
                self.error = e


@contextmanager
def _restore_postgres(dump: Path, admin: str) -> Iterator[str]:
    if shutil.which("pg_restore") is None:
        service_unavailable("pg_restore", "the PostgreSQL client is not installed")
    name = f"stepout_restore_{secrets.token_hex(5)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"postgresql+psycopg://{admin.split('://', 1)[1].rpartition('/')[0]}/{name}"
    try:
        conninfo, env = pg_conninfo(normalize_url(url))
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={conninfo}", str(dump)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


def test_a_backup_taken_while_exits_are_declared_restores_and_verifies(
    db: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: Keys
) -> None:
    monkeypatch.setenv("STEPOUT_DATABASE_URL", db_url)
    populate(db, sessions=200, live=3, reads=100)
    checkpoint = tmp_path / "checkpoint.json"
    run("checkpoint", "--out", str(checkpoint))

    writer = Writer(db)
    writer.start()
    while len(writer.acknowledged) < 3 and writer.is_alive():
        threading.Event().wait(0.01)
    before = list(writer.acknowledged)  # acknowledged before the backup began
    out = tmp_path / "stepout.backup"
    try:
        output = run("backup", str(out))
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.error is None, writer.error
    assert "The key file is not in it" in output
    assert len(writer.acknowledged) > len(before), "the writer did not write during the backup"
    assert out.stat().st_mode & 0o777 == 0o600  # readable by its owner only

    if db.dialect == "sqlite":
        with sqlite3.connect(out) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        restored = tmp_path / "restored" / "stepout.db"
        restored.parent.mkdir()
        shutil.copy(out, restored)
        _check_restored(f"sqlite:///{restored}", checkpoint, before, monkeypatch, keys)
    else:
        admin = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
        admin = f"{admin.rpartition('/')[0]}/postgres"
        with _restore_postgres(out, admin) as url:
            _check_restored(url, checkpoint, before, monkeypatch, keys)


def _check_restored(
    url: str, checkpoint: Path, before: list[str], monkeypatch: pytest.MonkeyPatch, keys: Keys
) -> None:
    monkeypatch.setenv("STEPOUT_DATABASE_URL", url)
    output = run("verify", "--checkpoint", str(checkpoint))
    assert "Ledger intact" in output
    assert "Audit trail intact" in output
    assert "holds" in output
    restored = Database.open(url, keys=keys)
    try:
        with restored.uow(read_only=True) as uow:
            assert all(uow.records.exit(x) is not None for x in before)
        with restored.engine.connect() as conn:
            events = conn.execute(text("SELECT COUNT(*) FROM events")).scalar_one()
        assert events > 200
    finally:
        restored.dispose()


def test_a_backup_never_overwrites_a_file(db_url: str, db: Database, tmp_path: Path) -> None:
    out = tmp_path / "there.backup"
    out.write_text("an earlier backup")
    with pytest.raises(BackupError, match="already exists"):
        backup(db_url, out)
    assert out.read_text() == "an earlier backup"


@pytest.mark.postgres
def test_without_pg_dump_the_backup_says_what_to_install(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    out = tmp_path / "stepout.backup"
    with pytest.raises(BackupError, match="postgresql-client"):
        backup(postgres_url, out)
    assert not out.exists()
    assert not list(tmp_path.iterdir())


@pytest.mark.postgres
def test_a_backup_by_the_tables_owner_holds_every_practice(
    postgres_url: str, keys: Keys, tmp_path: Path
) -> None:
    """Row-level security is forced on the owner too (0007): a plain pg_dump as the owner
    fails, and with --enable-row-security alone it dumps no rows. `stepout backup` dumps
    every practice's rows."""
    db = Database.open(postgres_url, keys=keys, migrate=False)
    try:
        db.migrate()
        populate(db, sessions=30, live=1, reads=5)
    finally:
        db.dispose()
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    role = f"stepout_owner_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for table in tables:
            conn.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                    sql.Identifier(table), sql.Identifier(role)
                )
            )
    owner_url = postgres_url.replace("postgres@", f"{role}@", 1)
    out = tmp_path / "owner.backup"
    try:
        backup(owner_url, out)
        with _restore_postgres(out, f"{admin.rpartition('/')[0]}/postgres") as url:
            restored = Database.open(url, keys=keys)
            try:
                assert all(r.ok for r in restored.verify_chains().values())
                with restored.engine.connect() as conn:
                    assert conn.execute(text("SELECT COUNT(*) FROM sessions")).scalar_one() == 31
            finally:
                restored.dispose()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO postgres").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with psycopg.connect(f"{admin.rpartition('/')[0]}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
