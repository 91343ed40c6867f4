"""End-to-end tests run once on an embedded SQLite file and once on a fresh PostgreSQL
database."""

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stepout.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
