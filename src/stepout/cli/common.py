"""What every command shares: the console, settings, argument parsing and failing well."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from stepout.bootstrap import ensure_keys, open_database
from stepout.config import Settings
from stepout.domain.instants import Instant, InstantError, now, parse_instant

if TYPE_CHECKING:
    from stepout.adapters.db import Database

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    # Not wrapped: a path or a key cut at the terminal's edge cannot be copied whole.
    err_console.print(
        Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def settings() -> Settings:
    return Settings()


def ensure_key_file() -> None:
    """Create the key file if there is none (`init` and `demo`), and say where it is."""
    current = settings()
    if ensure_keys(current):
        console.print(
            f"Created the key file {current.secret_key_file}. It holds the keys that encrypt"
            " health data and sign the ledger: without it the data cannot be read. A real"
            " deployment keeps it outside the data directory and backs it up apart from the"
            " database (STEPOUT_SECRET_KEY_FILE).",
            highlight=False,
        )


@contextmanager
def database(*, migrate: bool = True) -> Iterator["Database"]:
    from stepout.adapters.db import tenancy
    from stepout.adapters.db.migrate import SchemaNotCurrent
    from stepout.crypto.keyfile import KeyFileError

    # The operator's commands span practices (import, export, reports, verify, rebuild): the
    # tenant scope ALL. The web app that `serve` and `demo` run seals each request anew.
    tenancy.set_process_default(tenancy.ALL)

    try:
        db = open_database(settings(), migrate=migrate)
    except (SchemaNotCurrent, KeyFileError) as e:
        fail(str(e))
    try:
        yield db
    finally:
        db.dispose()


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: expected a date like 2026-11-01")


def parse_as_of(value: str | None) -> Instant:
    if value is None or value == "now":
        return now()
    try:
        return parse_instant(value)
    except InstantError:
        fail("--as-of: expected an ISO 8601 time with an offset, like 2026-11-30T18:00:00+00:00")
