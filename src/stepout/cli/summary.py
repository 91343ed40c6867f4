"""The at-a-glance summary printed by `stepout summary` and `stepout demo`."""

from rich.columns import Columns
from rich.table import Table

from stepout.cli.common import console
from stepout.domain.instants import to_datetime
from stepout.policy.model import RULE_IDS, Policy
from stepout.services.reporting import Summary


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def print_summary(s: Summary, policy: Policy) -> None:
    overview = Table(title="Sessions", show_header=False, title_justify="left")
    if s.first_start is not None and s.last_start is not None:
        first, last = to_datetime(s.first_start).date(), to_datetime(s.last_start).date()
        overview.add_row("period (UTC)", f"{first} to {last}")
    overview.add_row("sessions", f"{s.sessions:,}")
    overview.add_row("therapists", f"{s.therapists:,}")
    overview.add_row(
        "with an exit", f"{s.sessions_with_exits:,} ({_pct(s.sessions_with_exits, s.sessions)})"
    )
    overview.add_row("exits", f"{s.exits:,}")

    reasons = Table(title="Exits by reason", title_justify="left")
    reasons.add_column("reason")
    reasons.add_column("exits", justify="right")
    for reason, count in s.exits_by_reason.most_common():
        reasons.add_row(reason, f"{count:,}")

    billing = Table(title="Billing", title_justify="left")
    billing.add_column("status")
    billing.add_column("sessions", justify="right")
    for status in ("unsupported", "undercoded", "supported", "not_billed"):
        billing.add_row(status, f"{s.billing_by_status.get(status, 0):,}")
    console.print(Columns([overview, reasons, billing]))

    findings = Table(title=f"Findings (policy {policy.version})", title_justify="left")
    findings.add_column("rule")
    findings.add_column("violations", justify="right", style="red")
    findings.add_column("warnings", justify="right", style="yellow")
    for rule in RULE_IDS:
        v = s.findings_by_rule.get((rule, "violation"), 0)
        w = s.findings_by_rule.get((rule, "warning"), 0)
        findings.add_row(rule, f"{v:,}" if v else "·", f"{w:,}" if w else "·")
    console.print(findings)
    unsupported = s.billing_by_status.get("unsupported", 0)
    if unsupported:
        console.print(
            f"{unsupported:,} sessions bill more time than the therapist was in the room: "
            "[bold]stepout billing --status unsupported[/]"
        )
    console.print("Every finding with its session and exit: [bold]stepout audit[/]")
