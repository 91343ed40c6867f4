"""The `stepout` command line."""

from typing import Annotated

import typer

from stepout import __version__
from stepout.cli import (
    accounts,
    admin,
    fhir,
    keys,
    records,
    report,
    reports,
    schedule,
    sensors,
    serve,
)
from stepout.cli.groups import default_group

app = typer.Typer(
    name="stepout",
    help="Record, guide and audit the moments a therapist leaves the session.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold health data
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stepout {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Settings come from STEPOUT_* environment variables (see `docs/operations.md`)."""


app.command("init")(admin.init)
app.command("demo")(admin.demo)
import_app = default_group("Import records (the default: `stepout import FILE`) or a schedule.")
import_app.command("records")(records.import_)
import_app.command("schedule")(schedule.import_schedule_command)
import_app.command("fhir")(fhir.import_fhir)
app.add_typer(import_app, name="import")
export_app = default_group(
    "Export records (the default: `stepout export`) or a FHIR Bundle.", no_args_is_help=False
)
export_app.command("records")(records.export)
export_app.command("fhir")(fhir.export_fhir)
app.add_typer(export_app, name="export")
app.command("generate")(records.generate_)
app.command("audit")(reports.audit)
app.command("billing")(reports.billing)
app.command("summary")(reports.summary)
app.command("report")(report.report)
app.command("verify")(admin.verify)
app.command("checkpoint")(admin.checkpoint)
app.command("backup")(admin.backup)
app.command("rebuild")(admin.rebuild)
app.add_typer(reports.policy_app, name="policy")
app.command("serve")(serve.serve)
app.add_typer(accounts.practices_app, name="practices")
app.add_typer(accounts.users_app, name="users")
app.add_typer(accounts.rooms_app, name="rooms")
app.add_typer(accounts.tokens_app, name="tokens")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(sensors.sensors_app, name="sensors")


def main() -> None:
    app()
