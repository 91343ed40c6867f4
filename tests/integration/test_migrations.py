"""Alembic migrations bring an empty database to the schema the code expects, on both engines."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from stepout.adapters.db import Database, SchemaNotCurrent
from stepout.adapters.db.migrate import head
from stepout.adapters.db.tables import Base
from tests.keys import run_keys


def test_migrate_brings_an_empty_database_to_head(db_url: str) -> None:
    db = Database.open(db_url, migrate=False, keys=run_keys())
    try:
        assert db.revision() is None
        assert db.migrate() == head()
        assert db.revision() == head()
        tables = set(inspect(db.engine).get_table_names())
        assert {"events", "practices", "sessions", "exits", "concerns", "amendments"} <= tables
    finally:
        db.dispose()


def test_migrating_twice_is_harmless(db: Database) -> None:
    assert db.migrate() == head()
    assert db.revision() == head()


def test_migrated_schema_matches_the_table_classes(db: Database) -> None:
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_the_ledger_refuses_updates_and_deletes(db: Database) -> None:
    from tests.integration.builders import practice

    with db.uow() as uow:
        uow.ledger.append([practice()])
        uow.commit()
    for statement in ("UPDATE events SET kind = 'x'", "DELETE FROM events"):
        with db.engine.connect() as conn, pytest.raises(Exception, match="append-only"):
            conn.execute(text(statement))
    assert db.verify_ledger().checked == 1


def test_opening_sqlite_creates_its_folder_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "stepout.db"
    db = Database.open(f"sqlite:///{path}", keys=run_keys())
    try:
        assert path.exists()
        assert db.revision() == head()
    finally:
        db.dispose()


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """Whatever the umask: SQLite gives its write-ahead log the database file's mode."""
    path = tmp_path / "stepout.db"
    db = Database.open(f"sqlite:///{path}", keys=run_keys())
    try:
        with db.uow() as uow:
            uow.connection.exec_driver_sql("CREATE TABLE probe (x)")
            uow.commit()
        wal = path.with_name(path.name + "-wal")
        assert wal.exists()
        assert {p.stat().st_mode & 0o777 for p in (path, wal)} == {0o600}
    finally:
        db.dispose()


@pytest.mark.postgres
def test_opening_an_unmigrated_postgres_database_says_to_run_init(postgres_url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match="stepout init"):
        Database.open(postgres_url, keys=run_keys())
    db = Database.open(postgres_url, migrate=False, keys=run_keys())
    try:
        db.migrate()
    finally:
        db.dispose()
    Database.open(postgres_url, keys=run_keys()).dispose()


@pytest.mark.postgres
def test_a_plain_postgresql_url_means_psycopg_3(postgres_url: str) -> None:
    db = Database.open(postgres_url.replace("+psycopg", ""), migrate=False, keys=run_keys())
    try:
        assert db.engine.dialect.driver == "psycopg"
    finally:
        db.dispose()
