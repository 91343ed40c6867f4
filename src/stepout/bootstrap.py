"""Wire the adapters to the settings, once, for every edge (CLI today, web and MQTT later)."""

from pathlib import Path
from typing import TYPE_CHECKING

from stepout.config import Settings
from stepout.policy.model import Policy, load_policy

if TYPE_CHECKING:
    from stepout.adapters.db import Database
    from stepout.crypto.keys import Keys


def open_keys(settings: Settings) -> "Keys":
    """The keys of the configured key file (`KeyFileError` if it is missing or malformed)."""
    from stepout.crypto.keyfile import load_keys

    return load_keys(settings.secret_key_file)


def ensure_keys(settings: Settings) -> bool:
    """Create the configured key file if there is none; whether it was created now."""
    from stepout.crypto.keyfile import ensure

    return ensure(settings.secret_key_file)[1]


def open_database(settings: Settings, *, migrate: bool = True) -> "Database":
    """The configured database, with the key file's keys; an embedded SQLite file is brought
    to the current schema. (Imported here: commands that need no database start without
    SQLAlchemy and Alembic.)"""
    from stepout.adapters.db import Database

    return Database.open(settings.database_url, keys=open_keys(settings), migrate=migrate)


def effective_policy(settings: Settings, override: Path | None = None) -> Policy:
    """The policy in force: `--policy`, else `STEPOUT_POLICY`, else the shipped default."""
    return load_policy(override or settings.policy)
