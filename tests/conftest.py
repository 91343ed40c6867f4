"""What every test suite shares: the switch that makes a missing service fail, not skip, and
fresh PostgreSQL databases.

Tests that need a service (PostgreSQL, Mosquitto, Chromium) call `service_unavailable(...)`
when it is not there: the test skips, unless STEPOUT_REQUIRE_SERVICES=1 (CI), where it fails.
"""

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

from stepout.adapters.db import tenancy
from stepout.crypto.keyfile import generate, load_keys
from stepout.crypto.keys import Keys

# The tests' own setup and checks read and write as the operator does (every practice); the
# web app still seals each request and enters the caller's practice (tenancy.py).
tenancy.set_process_default(tenancy.ALL)

REQUIRE_SERVICES = os.environ.get("STEPOUT_REQUIRE_SERVICES") == "1"
# libpq form; SQLAlchemy URLs are the same with `postgresql+psycopg://`.
POSTGRES_ADMIN = os.environ.get(
    "STEPOUT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
MQTT_BROKER = os.environ.get("STEPOUT_TEST_MQTT", "127.0.0.1:1883")  # host:port


def service_unavailable(service: str, why: str) -> NoReturn:
    """Skip the test for want of `service`; fail it when STEPOUT_REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(
            f"{service} is required (STEPOUT_REQUIRE_SERVICES=1) but unavailable: {why}",
            pytrace=False,
        )
    pytest.skip(f"{service} unavailable: {why}")


@pytest.fixture(scope="session", autouse=True)
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One key file for the whole run, named by STEPOUT_SECRET_KEY_FILE, so that every
    `Settings()` and every `stepout` subprocess finds it."""
    path = tmp_path_factory.mktemp("keys") / "stepout.key"
    generate(path)
    before = os.environ.get("STEPOUT_SECRET_KEY_FILE")
    os.environ["STEPOUT_SECRET_KEY_FILE"] = str(path)
    try:
        yield path
    finally:
        if before is None:
            del os.environ["STEPOUT_SECRET_KEY_FILE"]
        else:
            os.environ["STEPOUT_SECRET_KEY_FILE"] = before


@pytest.fixture(scope="session")
def keys(key_file: Path) -> Keys:
    """The keys of the run's key file."""
    return load_keys(key_file)


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


@pytest.fixture(scope="session")
def mqtt_broker() -> tuple[str, int]:
    """The (host, port) of a reachable MQTT broker (Mosquitto). Tests share it: each uses
    topics under a root of its own."""
    host, _, port = MQTT_BROKER.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as e:
        service_unavailable(f"Mosquitto at {MQTT_BROKER}", e.strerror or type(e).__name__)
    return host, int(port)
