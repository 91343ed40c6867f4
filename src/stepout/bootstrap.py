"""Wire the adapters to the settings, once, for every edge (CLI today, web and MQTT later)."""

from pathlib import Path
from typing import TYPE_CHECKING

from stepout.config import Settings
from stepout.policy.model import Policy, load_policy

if TYPE_CHECKING:
    from stepout.adapters.db import Database


def open_database(settings: Settings, *, migrate: bool = True) -> "Database":
    """The configured database; an embedded SQLite file is brought to the current schema.
    (Imported here: commands that need no database start without SQLAlchemy and Alembic.)"""
    from stepout.adapters.db import Database

    return Database.open(settings.database_url, migrate=migrate)


def effective_policy(settings: Settings, override: Path | None = None) -> Policy:
    """The policy in force: `--policy`, else `STEPOUT_POLICY`, else the shipped default."""
    return load_policy(override or settings.policy)
