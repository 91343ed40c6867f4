"""`stepout import schedule FILE`: appointments from CSV, iCalendar or a FHIR Bundle, all or
nothing (docs/schedules.md)."""

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Annotated

import typer

from stepout.adapters.schedule import Format, format_of
from stepout.adapters.schedule.csvfile import CsvFileError, read_csv
from stepout.adapters.schedule.fhir import FhirFileError, read_fhir
from stepout.adapters.schedule.ics import IcsFileError, read_ics
from stepout.cli.common import console, database, err_console, fail
from stepout.domain.schedule import Raw, ScheduleError
from stepout.services.audit import cli_caller, write_alone
from stepout.services.ports import Accounts
from stepout.services.schedule import ScheduleRejected, import_schedule

FORMATS: tuple[Format, ...] = ("csv", "ics", "fhir")


class AccountsDirectory:
    """A practice's therapists (enabled therapist accounts) and rooms, read once each."""

    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts
        self.therapists = cache(self._therapists)
        self.rooms = cache(self._rooms)

    def _therapists(self, practice: str) -> set[str]:
        users = self._accounts.users(practice)
        return {u.id for u in users if u.role == "therapist" and not u.disabled}

    def _rooms(self, practice: str) -> set[str]:
        return {r.id for r in self._accounts.rooms(practice)}


def _read(data: bytes, kind: Format, practice: str | None, zone: str) -> Iterator[Raw]:
    """The file's entries, read as they are taken; raises ScheduleRejected when the file
    cannot be read at all."""
    try:
        if kind == "csv":
            yield from read_csv(data, practice)
            return
        assert practice is not None
        if kind == "ics":
            yield from read_ics(data, practice, zone)
            return
        yield from read_fhir(data, practice)
    except (CsvFileError, IcsFileError, FhirFileError) as e:
        raise ScheduleRejected(e.errors) from None


def import_schedule_command(
    file: Annotated[Path, typer.Argument(help="A .csv, .ics or .json (FHIR Bundle) file.")],
    practice: Annotated[
        str | None,
        typer.Option(
            "--practice",
            help="The practice the appointments belong to (required for .ics and FHIR; for CSV, "
            "instead of a practice column, or to check it).",
        ),
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option("--format", help="csv, ics or fhir (default: from the file's suffix)."),
    ] = None,
) -> None:
    """Import appointments (all or nothing): one bad entry rejects the whole file."""
    kind = format_ if format_ is not None else format_of(file)
    if kind not in FORMATS:
        fail(f"{file}: say --format csv, ics or fhir (the file's suffix does not tell)")
    if not file.is_file():
        fail(f"{file}: no such file")
    if kind != "csv" and practice is None:
        fail(f"--practice is required for a {kind} schedule")
    data = file.read_bytes()
    caller = cli_caller(practice)
    with database() as db:
        zone = "UTC"
        if practice is not None:
            with db.uow(read_only=True) as uow:
                found = uow.records.practice(practice)
            if found is None:
                fail(f"--practice: no practice {practice}")
            zone = found.timezone
        read = [0]
        try:
            with db.uow() as uow:
                uow.audit.at_commit(lambda: caller.record("schedule.import", count=read[0]))
                report = import_schedule(
                    uow,
                    _read(data, kind, practice, zone),
                    practice=practice,
                    directory=AccountsDirectory(uow.accounts),
                    progress=lambda n: read.__setitem__(0, n),
                )
        except ScheduleRejected as rejected:
            write_alone(db.uow, caller.record("schedule.import", outcome="failed"))
            _print_errors(rejected.errors)
            fail(f"{file}: rejected, {len(rejected.errors)} errors; nothing was stored.", 1)
    e = report.effects
    console.print(
        f"Read {report.appointments:,} appointments: {e['schedule']:,} scheduled, "
        f"{e['reschedule']:,} rescheduled, {e['cancel']:,} cancelled, "
        f"{e['unchanged']:,} unchanged, {e['skip']:,} skipped (cancelled, never scheduled)."
    )


def _print_errors(errors: list[ScheduleError]) -> None:
    for error in errors:
        err_console.print(str(error), highlight=False, markup=False)
