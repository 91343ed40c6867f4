"""`stepout report`: the month's compliance and billing report as one self-contained HTML file
(or a PDF, where WeasyPrint is installed)."""

from pathlib import Path
from typing import Annotated

import typer

from stepout.bootstrap import effective_policy
from stepout.cli.common import console, database, fail, parse_as_of, settings
from stepout.policy.model import PolicyError
from stepout.services.audit import cli_caller, span_target, write_alone


def report(
    month: Annotated[str, typer.Option("--month", help="The month, as 2026-11.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write (HTML or PDF).")],
    practice: Annotated[
        list[str] | None,
        typer.Option("--practice", help="Only this practice (repeatable; default: every one)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="html or pdf.")] = "html",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge deadlines at this time (default: now).")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy TOML file (default: STEPOUT_POLICY).")
    ] = None,
) -> None:
    """Write the month's report: figures, charts, findings by rule and therapist, billing
    discrepancies, open concerns and the policy version; self-contained, it prints to PDF."""
    from stepout.adapters.reports.monthly import build_report, month_bounds, render_html, write_pdf

    if fmt not in ("html", "pdf"):
        fail(f"--format: expected html or pdf, not {fmt!r}")
    try:
        first, last = month_bounds(month)
    except ValueError as e:
        fail(f"--month: {e}")
    try:
        the_policy = effective_policy(settings(), policy)
    except PolicyError as e:
        fail(str(e))
    instant = parse_as_of(as_of)
    with database() as db:
        with db.uow(read_only=True) as uow:
            try:
                built = build_report(
                    uow.connection, uow.records, month, the_policy, instant, practice or None
                )
            except LookupError as e:
                fail(f"--practice: {e.args[0]}")
        sessions = sum(s.dashboard.totals.sessions for s in built.sections)
        # Recorded before the file is written, as every export is.
        target = practice[0] if practice and len(practice) == 1 else span_target(first, last)
        write_alone(db.uow, cli_caller().record("report.export", target, count=sessions))
    html = render_html(built)
    if fmt == "pdf":
        try:
            write_pdf(html, out)
        except ImportError:
            fail("--format pdf needs WeasyPrint: pip install 'stepout[pdf]' (or print the HTML)")
    else:
        out.write_text(html, encoding="utf-8")
    console.print(
        f"Wrote {out}: {len(built.sections)} practice(s), {sessions:,} sessions, "
        f"policy {the_policy.name} version {the_policy.version}.",
        highlight=False,
    )
