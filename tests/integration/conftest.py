"""Storage tests run on both engines: the `db` fixture is an SQLite file and, marked
`postgres`, a fresh PostgreSQL database."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from stepout.adapters.db import Database
from stepout.crypto.keys import Keys

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database's URL, on each engine in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'stepout.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def db(db_url: str, keys: Keys) -> Iterator[Database]:
    """A migrated, empty database on each engine in turn."""
    database = Database.open(db_url, keys=keys, migrate=False)
    database.migrate()
    try:
        yield database
    finally:
        database.dispose()
