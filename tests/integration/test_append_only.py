"""Append-only, on both engines: the ledger (`events`) and the audit trail (`audit_log`) refuse
UPDATE and DELETE (and TRUNCATE on PostgreSQL), while everything Stepout does itself (imports,
the live workflow, rebuilding the projections, rotating keys) keeps working.

On PostgreSQL an application role with the grants docs/operations.md gives (SELECT and INSERT
on the two tables) can neither change rows nor lift the guard."""

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from stepout.adapters.db import Database
from stepout.cli import app
from stepout.crypto.keyfile import load_keys
from stepout.crypto.keys import Keys
from tests.tampering import CHAINS, count, live_session, populate

MESSAGES = {"events": "events are append-only", "audit_log": "audit records are append-only"}
CHANGES = [
    "UPDATE {table} SET hash = prev_hash WHERE seq = 2",
    "UPDATE {table} SET seq = seq + 1000000",
    "DELETE FROM {table} WHERE seq = 3",
    "DELETE FROM {table}",
]


@pytest.fixture
def filled(db: Database) -> Database:
    populate(db, sessions=40, live=2, reads=20)
    return db


def _counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {chain.table: count(conn, chain) for chain in CHAINS}


@pytest.mark.parametrize("table", list(MESSAGES))
@pytest.mark.parametrize("change", CHANGES)
def test_updates_and_deletes_are_refused(filled: Database, table: str, change: str) -> None:
    before = _counts(filled)
    with filled.engine.connect() as conn, pytest.raises(DBAPIError, match=MESSAGES[table]):
        conn.execute(text(change.format(table=table)))
    assert _counts(filled) == before
    assert all(result.ok for result in filled.verify_chains().values())


@pytest.mark.postgres
@pytest.mark.parametrize("table", list(MESSAGES))
def test_truncate_is_refused_on_postgresql(postgres_url: str, keys: Keys, table: str) -> None:
    db = Database.open(postgres_url, keys=keys, migrate=False)
    try:
        db.migrate()
        populate(db, sessions=10, live=1, reads=5)
        with db.engine.connect() as conn, pytest.raises(DBAPIError, match=MESSAGES[table]):
            conn.execute(text(f"TRUNCATE {table} CASCADE"))
        assert all(result.ok for result in db.verify_chains().values())
    finally:
        db.dispose()


def test_what_stepout_does_itself_is_unaffected(filled: Database) -> None:
    """An import, the live workflow (every step of an exit), a second import, rebuilding the
    projections: all append, none is refused, and both chains verify."""
    live_session(filled, "t-after")
    populate(filled, sessions=0, live=1, reads=3)
    replayed = filled.rebuild_projections()
    with filled.engine.connect() as conn:
        assert replayed == count(conn, CHAINS[0])
    results = filled.verify_chains()
    assert all(result.ok for result in results.values())
    assert results["ledger"].checked > 40
    assert results["audit"].checked >= 23


def test_rotating_the_encryption_key_is_unaffected(
    db_url: str, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stepout keys rotate` re-wraps the practices' data keys (`data_keys`), never a chained
    row. On a key file of its own: rotating changes the file."""
    own = tmp_path / "own.key"
    shutil.copy(key_file, own)
    monkeypatch.setenv("STEPOUT_SECRET_KEY_FILE", str(own))
    monkeypatch.setenv("STEPOUT_DATABASE_URL", db_url)
    db = Database.open(db_url, keys=load_keys(own), migrate=False)
    try:
        db.migrate()
        populate(db, sessions=40, live=1, reads=5)
        before = _counts(db)
        result = CliRunner().invoke(app, ["keys", "rotate"])
        assert result.exit_code == 0, result.output
        assert _counts(db) == before
        assert all(result.ok for result in db.verify_chains().values())
        live_session(db, "t-after-rotation")
    finally:
        db.dispose()


# PostgreSQL: the application's own role, with the grants of docs/operations.md.

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"
GRANTS_MARKER = "<!-- app-role-grants:"


def documented_grants() -> list[str]:
    """The SQL statements docs/operations.md gives the application's role."""
    text = OPERATIONS.read_text()
    block = text[text.index(GRANTS_MARKER) :].split("```sql\n", 1)[1].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";") if s.strip()]
    assert statements, "docs/operations.md lost the application role's grants"
    return statements


@pytest.fixture
def app_role(postgres_url: str, keys: Keys) -> Iterator[tuple[str, str]]:
    """A migrated database with some entries, and a login role with the grants
    docs/operations.md gives the application: (the role's conninfo, the admin's conninfo)."""
    db = Database.open(postgres_url, keys=keys, migrate=False)
    try:
        db.migrate()
        populate(db, sessions=10, live=1, reads=5)
    finally:
        db.dispose()
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    role = f"stepout_app_{secrets.token_hex(4)}"
    name = sql.Identifier(role)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
        for statement in documented_grants():
            conn.execute(statement.replace("stepout_app", role))
    server, _, _ = admin.rpartition("/")
    user_conninfo = admin.replace("postgres@", f"{role}@", 1)
    assert user_conninfo != admin, "the test expects a conninfo with the user postgres"
    try:
        yield user_conninfo, admin
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(name))
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(name))


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE {table} SET hash = prev_hash", "permission denied"),
        ("DELETE FROM {table}", "permission denied"),
        ("TRUNCATE {table}", "permission denied"),
        ("ALTER TABLE {table} DISABLE TRIGGER USER", "must be owner"),
        ("DROP TRIGGER {table}_no_change ON {table}", "must be owner"),
    ],
)
def test_the_application_role_cannot_change_rows_or_lift_the_guard(
    app_role: tuple[str, str], statement: str, refusal: str
) -> None:
    user, _ = app_role
    for table in MESSAGES:
        with psycopg.connect(user) as conn, pytest.raises(psycopg.Error, match=refusal):
            conn.execute(statement.format(table=table))


@pytest.mark.postgres
def test_the_application_role_runs_stepout(
    app_role: tuple[str, str], keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only the documented grants: the live workflow with its audit records, checkpoint
    and verify work."""
    user, _ = app_role
    url = user.replace("postgresql://", "postgresql+psycopg://", 1)
    db = Database.open(url, keys=keys)
    try:
        live_session(db, "t-app-role")
        assert all(result.ok for result in db.verify_chains().values())
    finally:
        db.dispose()
    monkeypatch.setenv("STEPOUT_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 0, result.output
