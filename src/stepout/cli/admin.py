"""`stepout init`, `verify`, `rebuild` and `demo`: the database and the demo practice."""

import io
from datetime import date
from typing import Annotated

import typer

from stepout.bootstrap import effective_policy
from stepout.cli.common import console, database, err_console, fail, settings
from stepout.cli.summary import print_summary
from stepout.domain.instants import now
from stepout.services.importing import ImportRejected, import_records
from stepout.services.ports import Selection
from stepout.services.reporting import summarize
from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

DEMO_PRACTICE = "demo"
DEMO_START = date(2026, 8, 3)  # a Monday; the demo's months end before late November 2026
DEMO_THERAPISTS = 12  # a group practice: 4,000 sessions are about three months of its work


def _safe_url(url: str) -> str:
    """The database URL without a password, fit for a terminal."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        rest = f"{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else rest
    return f"{scheme}{sep}{rest}"


def init() -> None:
    """Create the database or bring it to the current schema (Alembic, idempotent)."""
    with database(migrate=False) as db:
        revision = db.migrate()
    console.print(f"Database {_safe_url(settings().database_url)} is at revision {revision}.")


def verify() -> None:
    """Check the ledger's hash chain from the first entry to the last."""
    with database() as db:
        result = db.verify_ledger()
    if not result.ok:
        fail(f"ledger broken at entry {result.first_broken}: {result.reason}", 1)
    console.print(f"Ledger intact: {result.checked:,} entries verified.")


def rebuild() -> None:
    """Rebuild the sessions, exits and concerns tables from the ledger."""
    with database() as db:
        replayed = db.rebuild_projections()
    console.print(f"Projections rebuilt from {replayed:,} ledger entries.")


def demo(
    sessions: Annotated[int, typer.Option("--sessions", "-n", min=100)] = 4000,
    seed: Annotated[int, typer.Option("--seed")] = 2026,
) -> None:
    """Build a demo practice with synthetic records and show how it is doing."""
    config = GeneratorConfig(
        sessions=sessions,
        seed=seed,
        practice=DEMO_PRACTICE,
        start=DEMO_START,
        therapists=DEMO_THERAPISTS,
    )
    buffer = io.BytesIO()
    with err_console.status("Generating the demo practice…"):
        write_jsonl(generate(config), buffer)
    buffer.seek(0)
    with database() as db:
        try:
            with err_console.status("Importing…"), db.uow() as uow:
                report = import_records(uow, buffer, actor="demo")
        except ImportRejected as rejected:
            fail(
                "the database already holds other records under the demo's ids "
                f"({rejected.errors[0]}); use a fresh STEPOUT_DATABASE_URL",
            )
        policy = effective_policy(settings())
        with db.uow(read_only=True) as uow:
            result = summarize(uow.records, Selection(practice=DEMO_PRACTICE), policy, now())
    new = sum(report.created.values())
    console.rule("[bold]Stepout demo practice")
    console.print(
        f"Database: {_safe_url(settings().database_url)} "
        f"({new:,} records added, {report.unchanged:,} already there)."
    )
    print_summary(result, policy)
    console.print(
        "Try: [bold]stepout billing --status unsupported[/], "
        "[bold]stepout audit --rule undeclared-exit[/], [bold]stepout verify[/]."
    )
