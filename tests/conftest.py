"""What every test suite shares: the switch that makes a missing service fail, not skip, and
fresh PostgreSQL databases.

Tests that need a service (PostgreSQL, Mosquitto, Chromium) call `service_unavailable(...)`
when it is not there: the test skips, unless STEPOUT_REQUIRE_SERVICES=1 (CI), where it fails.
"""

import os
import secrets
from collections.abc import Iterator
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

REQUIRE_SERVICES = os.environ.get("STEPOUT_REQUIRE_SERVICES") == "1"
# libpq form; SQLAlchemy URLs are the same with `postgresql+psycopg://`.
POSTGRES_ADMIN = os.environ.get(
    "STEPOUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def service_unavailable(service: str, why: str) -> NoReturn:
    """Skip the test for want of `service`; fail it when STEPOUT_REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(
            f"{service} is required (STEPOUT_REQUIRE_SERVICES=1) but unavailable: {why}",
            pytrace=False,
        )
    pytest.skip(f"{service} unavailable: {why}")


def sqlalchemy_url(conninfo: str) -> str:
    return conninfo.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin conninfo of a reachable PostgreSQL server."""
    try:
        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        service_unavailable(f"PostgreSQL at {POSTGRES_ADMIN}", str(e).strip() or type(e).__name__)
    return POSTGRES_ADMIN


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database for one test (SQLAlchemy URL), dropped afterwards."""
    name = f"stepout_t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield sqlalchemy_url(f"{base}/{name}")
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
