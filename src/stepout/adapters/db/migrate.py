"""Alembic, configured in code: upgrade to head, the current revision, is it current.

The migration scripts live in the package (`migrations/`), so an installed Stepout migrates
its database with no alembic.ini anywhere. Upgrades run in one write transaction (BEGIN
IMMEDIATE / the advisory lock), so two `stepout init` at once do not race.
"""

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from stepout.adapters.db.engine import write_connection

MIGRATIONS: Final = Path(__file__).with_name("migrations")


class SchemaNotCurrent(RuntimeError):
    """The database is not at the schema this version of Stepout needs."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return str(revision)


def upgrade(engine: Engine) -> str:
    """Bring the database to the head revision; returns it."""
    with write_connection(engine) as conn, conn.begin():
        command.upgrade(alembic_config(conn), "head")
    return current(engine) or ""


def current(engine: Engine) -> str | None:
    """The database's revision, or None for a database Stepout never migrated."""
    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    return None if revision is None else str(revision)


def is_current(engine: Engine) -> bool:
    return current(engine) == head()


def require_current(engine: Engine) -> None:
    revision, wanted = current(engine), head()
    if revision != wanted:
        where = engine.url.render_as_string(hide_password=True)
        state = "has no Stepout schema" if revision is None else f"is at revision {revision}"
        raise SchemaNotCurrent(
            f"the database {where} {state}, and this Stepout needs revision {wanted}: "
            "run `stepout init` to migrate it"
        )
