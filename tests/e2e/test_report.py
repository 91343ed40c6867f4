"""`stepout report`, end to end on SQLite and PostgreSQL: one self-contained HTML file (no
script, nothing from another host) whose numbers are those of `stepout audit` and `stepout
billing` over the same month, and an audit record of the export."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepout.adapters.db import audit as sql_audit
from stepout.adapters.db.engine import create_engine_for
from tests.e2e.test_cli import run

AS_OF = "2026-11-15T00:00:00+00:00"
MONTH = ("--from", "2026-10-01", "--to", "2026-10-31")
FIGURE = re.compile(r'<li data-figure="(\w+)"[^>]*><span class="num">([\d,]+)</span>')
RULE = re.compile(
    r'<tr data-(rule|therapist)="([^"]+)"><td>[^<]*</td><td class="n">([\d,]+)</td>'
    r'<td class="n">([\d,]+)</td>'
)
WEEK_ROW = re.compile(
    r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>([a-z-]+)</td><td>(Violation|Warning)</td><td>(\d+)</td></tr>"
)
LINE = re.compile(r'<tr data-session="([^"]+)" data-status="(\w+)">')
OUTSIDE = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPOUT_DATABASE_URL", database_url)
    monkeypatch.delenv("STEPOUT_POLICY", raising=False)
    runner = CliRunner()
    run(runner, "init")
    return runner


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_the_report_is_self_contained_and_matches_audit_and_billing(
    cli: CliRunner, tmp_path: Path, database_url: str
) -> None:
    records = tmp_path / "october.jsonl"
    run(cli, "generate", "--sessions", "300", "--seed", "11", "--out", str(records))
    run(cli, "import", str(records))
    out = tmp_path / "report.html"
    printed = run(cli, "report", "--month", "2026-10", "--out", str(out), "--as-of", AS_OF)
    assert "Wrote" in printed
    html = out.read_text()

    # Self-contained: inline CSS and SVG, no script, nothing fetched from anywhere.
    assert "<script" not in html.lower()
    assert OUTSIDE.search(html) is None
    assert '<link rel="stylesheet"' not in html
    assert html.count("<svg") == 5
    assert "@media print" in html
    assert "break-before: page" in html

    findings = json.loads(run(cli, "audit", *MONTH, "--as-of", AS_OF, "--format", "json"))
    lines = json.loads(
        run(
            cli, "billing", *MONTH, "--status", "unsupported", "--status", "undercoded",
            "--format", "json",
        )
    )  # fmt: skip
    every = json.loads(run(cli, "billing", *MONTH, "--format", "json"))

    figures = {name: _number(n) for name, n in FIGURE.findall(html)}
    severities = Counter(f["severity"] for f in findings)
    statuses = Counter(line["status"] for line in lines)
    assert figures["sessions"] == len(every) == 300
    assert figures["violations"] == severities["violation"]
    assert figures["warnings"] == severities["warning"]
    assert figures["unsupported"] == statuses["unsupported"]
    assert figures["undercoded"] == statuses["undercoded"]
    assert figures["violations"] + figures["warnings"] > 0
    assert statuses

    by_rule: Counter[tuple[str, str]] = Counter((f["rule"], f["severity"]) for f in findings)
    by_therapist: Counter[tuple[str, str]] = Counter(
        (f["therapist"] or "(none)", f["severity"]) for f in findings
    )
    for kind, name, violations, warnings in RULE.findall(html):
        counted = by_rule if kind == "rule" else by_therapist
        assert _number(violations) == counted[(name, "violation")], (kind, name)
        assert _number(warnings) == counted[(name, "warning")], (kind, name)
    shown_rules = {name for kind, name, *_ in RULE.findall(html) if kind == "rule"}
    assert shown_rules == {rule for rule, _ in by_rule}
    assert sorted(LINE.findall(html)) == sorted((x["session"], x["status"]) for x in lines)

    # The findings chart: per rule and severity, the weeks add up to the audit's findings
    # about sessions (exit-rate-high, about a therapist, has no week and is not drawn).
    chart = html[html.index('data-chart="findings-by-week"') :]
    chart = chart[: chart.index("</figure>")]
    weekly: Counter[tuple[str, str]] = Counter()
    for week, rule, severity, n in WEEK_ROW.findall(chart):
        assert week.startswith("2026-")
        weekly[(rule, severity.lower())] += _number(n)
    about_sessions = Counter(
        (f["rule"], f["severity"]) for f in findings if f["session"] is not None
    )
    assert weekly == about_sessions
    assert "audit computed" in chart

    engine = create_engine_for(database_url)
    with engine.connect() as conn:
        last = list(sql_audit.entries(conn))[-4:]
    engine.dispose()
    exported = [e for e in last if e.action == "report.export"]
    assert [(e.target, e.item_count, e.outcome) for e in exported] == [
        ("2026-10-01..2026-10-31", 300, "ok")
    ]


def test_one_practice_a_bad_month_and_an_unknown_practice(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert "--month" in run(cli, "report", "--month", "2026-13", "--out", str(out), code=2)
    assert "--format" in run(
        cli, "report", "--month", "2026-10", "--out", str(out), "--format", "doc", code=2
    )
    output = run(
        cli, "report", "--month", "2026-10", "--out", str(out), "--practice", "nowhere", code=2
    )
    assert "nowhere" in output
    assert not out.exists()
    records = tmp_path / "october.jsonl"
    run(cli, "generate", "--sessions", "40", "--seed", "2", "--out", str(records))
    run(cli, "import", str(records))
    run(cli, "report", "--month", "2026-10", "--out", str(out), "--practice", "demo")
    assert "(demo," in out.read_text()


def test_a_pdf_where_weasyprint_is_installed(cli: CliRunner, tmp_path: Path) -> None:
    pytest.importorskip("weasyprint")
    records = tmp_path / "october.jsonl"
    run(cli, "generate", "--sessions", "40", "--seed", "2", "--out", str(records))
    run(cli, "import", str(records))
    out = tmp_path / "report.pdf"
    run(cli, "report", "--month", "2026-10", "--out", str(out), "--format", "pdf")
    assert out.read_bytes().startswith(b"%PDF-")
