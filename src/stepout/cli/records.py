"""`stepout import`, `stepout export` and `stepout generate`: the JSON Lines interchange."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stepout.cli.common import console, database, err_console, fail
from stepout.services.audit import audit_import, cli_caller, write_alone
from stepout.services.exporting import export_records
from stepout.services.importing import ImportRejected, import_records
from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

if TYPE_CHECKING:
    from stepout.adapters.db import Database


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
    return count


@contextmanager
def _source(file: str) -> Iterator[tuple[BinaryIO, int | None]]:
    if file == "-":
        yield sys.stdin.buffer, None
        return
    path = Path(file)
    if not path.is_file():
        fail(f"{file}: no such file")
    with path.open("rb") as f:
        yield f, _count_lines(path)


def import_(
    file: Annotated[str, typer.Argument(help="A JSON Lines file, or - for standard input.")],
) -> None:
    """Import records (all or nothing): one bad line rejects the whole file."""
    with _source(file) as (stream, total), database() as db, _progress() as bar:
        task = bar.add_task("importing", total=total)
        caller = cli_caller()
        try:
            with db.uow() as uow:
                told = audit_import(uow, caller, lambda n: bar.update(task, completed=n))
                report = import_records(uow, stream, progress=told)
        except ImportRejected as rejected:
            write_alone(db.uow, caller.record("records.import", outcome="failed"))
            bar.stop()
            for error in rejected.errors:
                err_console.print(str(error), highlight=False, markup=False)
            fail(f"{file}: rejected, {len(rejected.errors)} errors; nothing was stored.", 1)
    created = ", ".join(_count(n, kind) for kind, n in report.created.items() if n) or "nothing"
    console.print(
        f"Imported {report.lines:,} lines: created {created}; {report.unchanged:,} unchanged."
    )


def export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (default: stdout).")] = None,
) -> None:
    """Write every stored record as JSON Lines (re-importable)."""
    with database() as db:
        # Recorded before the first record leaves (how many is not known until the last).
        write_alone(db.uow, cli_caller().record("records.export", "list"))
        _export(db, out)


def _export(db: "Database", out: Path | None) -> None:
    with db.uow(read_only=True) as uow:
        if out is None:
            export_records(uow.records, sys.stdout.buffer)
            return
        with out.open("wb") as f:
            count = export_records(uow.records, f)
    err_console.print(f"Exported {count:,} records to {out}.")


def generate_(
    sessions: Annotated[int, typer.Option("--sessions", "-n", min=1, help="How many sessions.")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same records.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (default: stdout).")] = None,
) -> None:
    """Write realistic synthetic records (no real person in them) as JSON Lines."""
    records = generate(GeneratorConfig(sessions=sessions, seed=seed))
    if out is None:
        write_jsonl(records, sys.stdout.buffer)
        return
    with out.open("wb") as f, _progress() as bar:
        task = bar.add_task("generating", total=sessions)
        count = write_jsonl(records, f, progress=lambda n: bar.update(task, completed=n))
    err_console.print(f"Wrote {count:,} records for {sessions:,} sessions to {out}.")
