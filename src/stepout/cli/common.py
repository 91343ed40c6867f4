"""What every command shares: the console, settings, argument parsing and failing well."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from stepout.bootstrap import open_database
from stepout.config import Settings
from stepout.domain.instants import Instant, InstantError, now, parse_instant

if TYPE_CHECKING:
    from stepout.adapters.db import Database

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(Text.assemble(("error: ", "bold red"), message), highlight=False)
    raise typer.Exit(code)


def settings() -> Settings:
    return Settings()


@contextmanager
def database(*, migrate: bool = True) -> Iterator["Database"]:
    from stepout.adapters.db.migrate import SchemaNotCurrent

    try:
        db = open_database(settings(), migrate=migrate)
    except SchemaNotCurrent as e:
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
