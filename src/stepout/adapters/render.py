"""Findings and billing lines as a terminal table, JSON or CSV."""

import csv
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TextIO

import orjson
from rich.table import Table
from rich.text import Text

from stepout.domain.billing import BillingLine
from stepout.policy.findings import Finding

Format = Literal["table", "json", "csv"]

FINDING_FIELDS = ("rule", "severity", "session", "exit", "therapist", "message", "policy_version")
BILLING_FIELDS = (
    "session",
    "gross_minutes",
    "net_minutes",
    "billed_codes",
    "supported_codes",
    "status",
)


def billing_dict(line: BillingLine) -> dict[str, Any]:
    return {
        "session": line.session,
        "gross_minutes": line.gross_minutes,
        "net_minutes": line.net_minutes,
        "billed_codes": list(line.billed_codes),
        "supported_codes": list(line.supported_codes),
        "status": line.status,
    }


def write_json(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    """A JSON array, one element per line, written as it streams."""
    out.write("[")
    for i, row in enumerate(rows):
        out.write(",\n" if i else "\n")
        out.write(orjson.dumps(row).decode())
    out.write("\n]\n")


def write_csv(rows: Iterable[dict[str, Any]], fields: Sequence[str], out: TextIO) -> None:
    """CSV with a header; lists (CPT codes) are joined with single spaces."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow(
            " ".join(v) if isinstance(v, list) else ("" if v is None else v)
            for v in (row[f] for f in fields)
        )


_SEVERITY_STYLE = {"violation": "bold red", "warning": "yellow"}


def _title(shown: int, total: int, noun: str) -> str:
    return f"{total:,} {noun}" + (f" (the first {shown:,})" if shown < total else "")


def findings_table(findings: Sequence[Finding], total: int) -> Table:
    table = Table(title=_title(len(findings), total, "findings"), title_justify="left")
    for name in ("rule", "severity", "session", "exit", "therapist", "message"):
        table.add_column(name, overflow="fold")
    for f in findings:
        table.add_row(
            f.rule,
            Text(f.severity, style=_SEVERITY_STYLE[f.severity]),
            f.session or "",
            f.exit or "",
            f.therapist or "",
            Text(f.message),
        )
    return table


_STATUS_STYLE = {
    "unsupported": "bold red",
    "undercoded": "yellow",
    "supported": "green",
    "not_billed": "dim",
}


def billing_table(lines: Sequence[BillingLine], total: int) -> Table:
    table = Table(title=_title(len(lines), total, "sessions"), title_justify="left")
    for name in ("session", "gross", "net", "billed", "supported", "status"):
        table.add_column(name, justify="right" if name in ("gross", "net") else "left")
    for line in lines:
        table.add_row(
            line.session,
            str(line.gross_minutes),
            str(line.net_minutes),
            " ".join(line.billed_codes),
            " ".join(line.supported_codes),
            Text(line.status, style=_STATUS_STYLE[line.status]),
        )
    return table
