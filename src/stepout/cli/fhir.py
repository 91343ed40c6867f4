"""`stepout export fhir` and `stepout import fhir`: a FHIR Bundle out, Encounters in
(docs/fhir.md)."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from stepout.bootstrap import effective_policy
from stepout.cli.common import (
    console,
    database,
    err_console,
    fail,
    parse_as_of,
    parse_day,
    settings,
)
from stepout.policy.model import PolicyError
from stepout.services.audit import audit_import, cli_caller, span_target, write_alone
from stepout.services.fhir import BundleRejected
from stepout.services.fhir import export_fhir as export
from stepout.services.fhir import import_fhir as do_import
from stepout.services.ports import Selection

if TYPE_CHECKING:
    from stepout.adapters.fhir.codes import Release

ReleaseOpt = Annotated[
    str, typer.Option("--release", help="FHIR release: r5 or r4b.", show_default=True)
]


def _release(value: str, *, auto: bool = False) -> "Release | None":
    if auto and value == "auto":
        return None
    if value not in ("r5", "r4b"):
        fail(f"--release: expected {'auto, ' if auto else ''}r5 or r4b, not {value!r}")
    return value  # type: ignore[return-value]


def export_fhir(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (default: stdout).")] = None,
    release: ReleaseOpt = "r5",
    practice: Annotated[
        str | None, typer.Option("--practice", help="One practice's id (default: all).")
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="First session date (YYYY-MM-DD), inclusive.")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last session date, inclusive.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge the findings at this time (default: now)."),
    ] = None,
) -> None:
    """Write ended sessions as a FHIR Bundle: Encounters, what clients were told, health
    emergencies, and the audit's findings."""
    chosen = _release(release)
    assert chosen is not None
    first, last = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    if first and last and last < first:
        fail("--to: is before --from")
    instant = parse_as_of(as_of)
    try:
        policy = effective_policy(settings())
    except PolicyError as e:
        fail(str(e))
    selection = Selection(date_from=first, date_to=last, practice=practice)
    with database() as db:
        # Recorded before the first resource leaves (how many is not known until the last).
        entry = cli_caller(practice).record("fhir.export", span_target(first, last))
        write_alone(db.uow, entry)
        with db.uow(read_only=True) as uow:
            if out is None:
                export(uow.records, selection, policy, instant, chosen, sys.stdout.buffer)
                return
            with out.open("wb") as f:
                count = export(uow.records, selection, policy, instant, chosen, f)
    err_console.print(f"Exported {count:,} FHIR resources to {out}.")


def import_fhir(
    file: Annotated[str, typer.Argument(help="A FHIR Bundle (JSON), or - for standard input.")],
    release: Annotated[
        str, typer.Option("--release", help="auto (from the Encounters), r5 or r4b.")
    ] = "auto",
    practice: Annotated[
        str | None,
        typer.Option("--practice", help="The practice of Encounters that name no Organization."),
    ] = None,
) -> None:
    """Import the finished Encounters of a FHIR Bundle as sessions (all or nothing)."""
    chosen = _release(release, auto=True)
    data = _read(file)
    with database() as db:
        caller = cli_caller()
        try:
            with db.uow() as uow:
                told = audit_import(uow, caller)
                report = do_import(uow, data, release=chosen, practice=practice, progress=told)
        except BundleRejected as rejected:
            write_alone(db.uow, caller.record("records.import", outcome="failed"))
            for error in rejected.errors:
                err_console.print(str(error), highlight=False, markup=False)
            fail(f"{file}: rejected, {len(rejected.errors)} errors; nothing was stored.", 1)
    skipped = f"; {report.skipped:,} not finished, skipped" if report.skipped else ""
    console.print(
        f"Read {report.encounters:,} finished Encounters ({report.release}): created "
        f"{report.created:,} sessions; {report.unchanged:,} unchanged{skipped}.",
        highlight=False,
    )


def _read(file: str) -> bytes:
    if file == "-":
        stream: BinaryIO = sys.stdin.buffer
        return stream.read()
    path = Path(file)
    if not path.is_file():
        fail(f"{file}: no such file")
    return path.read_bytes()
