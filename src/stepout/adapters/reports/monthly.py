"""The monthly compliance and billing report (`stepout report`): one self-contained HTML file
(inline CSS, the charts as inline SVG drawn by vl-convert, no script, nothing fetched) that
prints well to PDF, and the PDF itself where WeasyPrint is installed.

Per practice: the month's figures and the dashboard's charts (SQL aggregates,
`adapters.db.dashboard`; the findings per week from the findings store when its audit holds
at the report's instant, else from an audit run for the report), findings by rule and by
therapist (the policy engine, exactly as `stepout audit --from --to` judges them), billing
discrepancies (as `stepout billing --status unsupported --status undercoded`), open client
concerns (counts only: no free text) and the policy version in force.
"""

import calendar
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Connection, select

from stepout.adapters.db.dashboard import SqlDashboard
from stepout.adapters.db.findings_store import findings_by_week
from stepout.adapters.db.rows import P
from stepout.adapters.reports.charts import Chart, charts, to_svg
from stepout.domain.billing import BillingLine
from stepout.domain.instants import Instant, to_datetime
from stepout.domain.practice import Practice
from stepout.policy.model import RULE_IDS, Policy
from stepout.services.dashboard import Dashboard, DashboardFilter, build_dashboard
from stepout.services.ports import Records, Selection
from stepout.services.reporting import run_audit, run_billing

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
DISCREPANCIES: Final = ("unsupported", "undercoded")
MAX_LINES: Final = 1000  # billing lines listed per practice; the rest: `stepout billing`


@dataclass(frozen=True, slots=True)
class Drawn:
    chart: Chart
    svg: str


@dataclass(frozen=True, slots=True)
class RuleCount:
    rule: str
    violations: int
    warnings: int


@dataclass
class PracticeSection:
    practice: Practice
    dashboard: Dashboard
    charts: list[Drawn] = field(default_factory=list)
    findings: int = 0
    by_rule: list[RuleCount] = field(default_factory=list)
    by_therapist: list[RuleCount] = field(default_factory=list)  # `rule` holds the therapist
    discrepancies: Counter[str] = field(default_factory=Counter)
    lines: list[BillingLine] = field(default_factory=list)  # at most MAX_LINES
    open_concerns: int = 0
    open_concerns_of_month: int = 0  # raised in the month

    @property
    def violations(self) -> int:
        return sum(r.violations for r in self.by_rule)

    @property
    def warnings(self) -> int:
        return sum(r.warnings for r in self.by_rule)

    @property
    def lines_cut(self) -> int:
        return sum(self.discrepancies.values()) - len(self.lines)


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    month: str  # 2026-11
    first: date
    last: date
    generated: Instant
    policy_name: str
    policy_version: str
    sections: list[PracticeSection]


def month_bounds(month: str) -> tuple[date, date]:
    """`2026-11` → (2026-11-01, 2026-11-30). ValueError for anything else."""
    year, _, number = month.partition("-")
    if len(year) != 4 or len(number) != 2 or not (year + number).isdigit():
        raise ValueError("expected a month like 2026-11")
    y, m = int(year), int(number)
    if not 1 <= m <= 12:
        raise ValueError("expected a month like 2026-11")
    return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])


def practice_ids(conn: Connection) -> list[str]:
    """Every practice the unit of work's tenant scope reaches, by id."""
    return list(conn.execute(select(P.id).order_by(P.id)).scalars())


def _section(
    conn: Connection,
    records: Records,
    practice: Practice,
    first: date,
    last: date,
    policy: Policy,
    now: Instant,
) -> PracticeSection:
    period = DashboardFilter(practice.id, first, last)
    dashboard = build_dashboard(SqlDashboard(conn), period, policy)
    weekly = findings_by_week(conn, records, period, practice.timezone, policy, now)
    dashboard = replace(dashboard, findings=weekly)
    section = PracticeSection(practice, dashboard)
    selection = Selection(date_from=first, date_to=last, practice=practice.id)
    rules: Counter[tuple[str, str]] = Counter()
    therapists: Counter[tuple[str, str]] = Counter()
    for f in run_audit(records, selection, policy, now):
        section.findings += 1
        rules[(f.rule, f.severity)] += 1
        therapists[(f.therapist or "(none)", f.severity)] += 1
    section.by_rule = [
        RuleCount(r, rules[(r, "violation")], rules[(r, "warning")])
        for r in RULE_IDS
        if rules[(r, "violation")] or rules[(r, "warning")]
    ]
    section.by_therapist = [
        RuleCount(t, therapists[(t, "violation")], therapists[(t, "warning")])
        for t in sorted({t for t, _ in therapists})
    ]
    for line in run_billing(records, selection, DISCREPANCIES):
        section.discrepancies[line.status] += 1
        if len(section.lines) < MAX_LINES:
            section.lines.append(line)
    concerns = records.open_concerns(practice.id, 1_000_000)
    section.open_concerns = len(concerns)
    sessions = records.sessions({c.session for c in concerns})
    section.open_concerns_of_month = sum(
        1
        for c in concerns
        if c.session in sessions
        and first <= _local_day(sessions[c.session].start, practice) <= last
    )
    return section


def _local_day(instant: Instant, practice: Practice) -> date:
    return to_datetime(instant).astimezone(ZoneInfo(practice.timezone)).date()


def build_report(
    conn: Connection,
    records: Records,
    month: str,
    policy: Policy,
    now: Instant,
    practices: list[str] | None = None,
) -> MonthlyReport:
    """The report's figures for `month`, for `practices` (None: every practice), read in one
    read-only unit of work (`conn` is its connection, `records` its records)."""
    first, last = month_bounds(month)
    ids = practices if practices is not None else practice_ids(conn)
    found = records.practices(ids)
    missing = [p for p in ids if p not in found]
    if missing:
        raise LookupError(f"no practice {missing[0]!r}")
    sections = [_section(conn, records, found[p], first, last, policy, now) for p in ids]
    return MonthlyReport(month, first, last, now, policy.name, policy.version, sections)


def draw(report: MonthlyReport) -> None:
    """Draw every chart of the report as SVG (vl-convert)."""
    for section in report.sections:
        section.charts = [Drawn(c, "" if c.empty else to_svg(c)) for c in charts(section.dashboard)]


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(report: MonthlyReport) -> str:
    """The report as one self-contained HTML document (draws the charts first if needed)."""
    if any(not s.charts for s in report.sections):
        draw(report)
    generated = to_datetime(report.generated).strftime("%Y-%m-%d %H:%M UTC")
    return _env.get_template("report.html").render(r=report, generated=generated)


def write_pdf(html: str, out: Path) -> None:
    """The HTML printed to PDF by WeasyPrint (`pip install 'stepout[pdf]'`); ImportError
    when it is not installed."""
    from weasyprint import HTML  # type: ignore[import-untyped, import-not-found, unused-ignore]

    HTML(string=html).write_pdf(str(out))
