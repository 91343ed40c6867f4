"""`stepout audit`, `stepout billing`, `stepout summary` and `stepout policy show`."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from stepout.adapters.render import (
    BILLING_FIELDS,
    FINDING_FIELDS,
    Format,
    billing_dict,
    billing_table,
    findings_table,
    write_csv,
    write_json,
)
from stepout.bootstrap import effective_policy
from stepout.cli.common import console, database, fail, parse_as_of, parse_day, settings
from stepout.cli.summary import print_summary
from stepout.domain.instants import Instant
from stepout.policy.model import RULE_IDS, Policy, PolicyError, describe
from stepout.services.audit import cli_caller, span_target, write_alone
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit, run_billing, summarize
from stepout.services.tables import safe_cell

FromOpt = Annotated[
    str | None, typer.Option("--from", help="First session date (YYYY-MM-DD), inclusive.")
]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last session date, inclusive.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]
PolicyOpt = Annotated[
    Path | None, typer.Option("--policy", help="Policy TOML file (default: STEPOUT_POLICY).")
]
TherapistOpt = Annotated[str | None, typer.Option("--therapist", help="One therapist's id.")]
LimitOpt = Annotated[int, typer.Option("--limit", help="Rows in the table format (0: all).")]

if TYPE_CHECKING:
    from stepout.adapters.db import Database

policy_app = typer.Typer(help="The protocol policy in force.", no_args_is_help=True)


def _format(value: str) -> Format:
    if value not in ("table", "json", "csv"):
        fail(f"--format: expected table, json or csv, not {value!r}")
    return value  # type: ignore[return-value]


def _policy(path: Path | None) -> Policy:
    try:
        return effective_policy(settings(), path)
    except PolicyError as e:
        fail(str(e))


def _selection(date_from: str | None, date_to: str | None, therapist: str | None) -> Selection:
    first, last = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    if first and last and last < first:
        fail("--to: is before --from")
    return Selection(date_from=first, date_to=last, therapist=therapist)


def _audited(db: "Database", action: str, selection: Selection, count: int) -> None:
    """Record the read in the audit trail before anything is printed."""
    target = selection.therapist or span_target(selection.date_from, selection.date_to)
    write_alone(db.uow, cli_caller().record(action, target, count=count))


def _neutral(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row whose text cannot run as a spreadsheet formula: a cell starting with = + - @,
    a tab or a carriage return gets a leading `'`, as the pages' downloads do
    (`services.tables.safe_cell`)."""
    return {k: safe_cell(v) if isinstance(v, str) else v for k, v in row.items()}


def _more(shown: int, total: int) -> None:
    if shown < total:
        console.print(f"… {total - shown} more; use --limit 0, or --format csv or json.")


def audit(
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge deadlines at this time (default: now).")
    ] = None,
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="Only this rule (repeatable).")
    ] = None,
    therapist: TherapistOpt = None,
    fmt: FormatOpt = "table",
    policy: PolicyOpt = None,
    limit: LimitOpt = 200,
) -> None:
    """Judge stored sessions against the protocol and list every finding."""
    out_format, the_policy = _format(fmt), _policy(policy)
    unknown = sorted(set(rule or ()) - set(RULE_IDS))
    if unknown:
        fail(f"--rule: unknown rule {unknown[0]!r}; the rules are: {', '.join(RULE_IDS)}")
    selection = _selection(date_from, date_to, therapist)
    instant = parse_as_of(as_of)
    with database() as db:
        with db.uow(read_only=True) as uow:
            findings = run_audit(uow.records, selection, the_policy, instant, rule or None)
        _audited(db, "findings.read", selection, len(findings))
        if out_format == "json":
            write_json((f.as_dict() for f in findings), sys.stdout)
        elif out_format == "csv":
            write_csv((f.as_dict() for f in findings), FINDING_FIELDS, sys.stdout)
        else:
            shown = findings if limit <= 0 else findings[:limit]
            console.print(findings_table(shown, len(findings)))
            _more(len(shown), len(findings))
            console.print(f"Policy {the_policy.name} version {the_policy.version}.")
        if as_of is None and policy is None:  # the policy in force, now: the dashboard's
            sys.stdout.flush()
            refresh_stored(db, the_policy, instant)


def refresh_stored(db: "Database", policy: Policy, at: Instant) -> None:
    """Bring the stored audit of every practice up to date (`adapters.db.findings_store`): the
    dashboard's findings chart then needs no audit of its own. Prints nothing."""
    from stepout.adapters.db.findings_store import refresh
    from stepout.adapters.reports.monthly import practice_ids

    with db.uow(read_only=True) as uow:
        practices = practice_ids(uow.connection)
    for practice in practices:
        refresh(db, practice, policy, at)


def billing(
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    therapist: TherapistOpt = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only unsupported, undercoded, supported or not_billed."),
    ] = None,
    fmt: FormatOpt = "table",
    limit: LimitOpt = 200,
) -> None:
    """Net face-to-face minutes per session against the billed CPT codes."""
    out_format = _format(fmt)
    wanted = set(status or ())
    bad = sorted(wanted - {"unsupported", "undercoded", "supported", "not_billed"})
    if bad:
        fail(f"--status: unknown status {bad[0]!r}")
    selection = _selection(date_from, date_to, therapist)
    with database() as db:
        with db.uow(read_only=True) as uow:
            lines = list(run_billing(uow.records, selection, wanted or None))
        _audited(db, "billing.read", selection, len(lines))
    if out_format == "json":
        write_json((billing_dict(line) for line in lines), sys.stdout)
    elif out_format == "csv":
        write_csv((_neutral(billing_dict(line)) for line in lines), BILLING_FIELDS, sys.stdout)
    else:
        shown = lines if limit <= 0 else lines[:limit]
        console.print(billing_table(shown, len(lines)))
        _more(len(shown), len(lines))


def summary(
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of")] = None,
    policy: PolicyOpt = None,
) -> None:
    """Sessions, exits by reason, findings by rule and billing at a glance."""
    the_policy = _policy(policy)
    selection = _selection(date_from, date_to, None)
    with database() as db:
        with db.uow(read_only=True) as uow:
            result = summarize(uow.records, selection, the_policy, parse_as_of(as_of))
        _audited(db, "summary.read", selection, result.sessions)
    print_summary(result, the_policy)


@policy_app.command("show")
def policy_show(
    policy: PolicyOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """Print the effective policy: the default with any override merged in."""
    described = describe(_policy(policy))
    if fmt == "json":
        sys.stdout.write(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console.print_json(data=described)
