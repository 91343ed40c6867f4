"""The rows each table of the pages shows, as plain data: the supervisor's overview (findings
by rule, the findings to review, open client concerns, exits needing attention, billing to
check), the dashboard's figures behind each chart, and the sessions behind a bar.

Built from what the pages read (the caller reads, under the caller's tenant scope and role);
nothing here reads storage. Times are ISO 8601 in the practice's time zone (with its offset).
A table holds no free text the page does not show to that role: review notes only for those
who read them (`stepout.services.reviews.sees_review_notes`), concerns' text only for those
who read concerns (the caller builds that table only for them).

`to_csv` and `to_json` write a table: CSV with a header row, RFC 4180 quoting, UTF-8, and every
cell that a spreadsheet would take for a formula (starting with `=`, `+`, `-`, `@`, a tab or a
carriage return) prefixed with `'`; JSON as `{"table", "columns", "rows": [{column: value}]}`.
"""

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final
from zoneinfo import ZoneInfo

from stepout.domain.billing import BillingLine
from stepout.domain.instants import Instant, to_datetime
from stepout.domain.records import Concern, Exit, Session
from stepout.services.dashboard import SessionLine
from stepout.services.reviews import Reviewed

Cell = str | int | float | bool | None

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Table:
    name: str  # `exits`, `billing`, `exits-by-week`...
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def records(self) -> list[dict[str, Cell]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def local_time(instant: Instant | None, zone: str) -> str | None:
    """`2026-11-03T14:05:00+01:00`: the instant in the practice's time zone, to the second."""
    if instant is None:
        return None
    return to_datetime(instant).astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")


# -- The supervisor's overview.


def finding_counts(counts: Counter[tuple[str, str]]) -> Table:
    """Findings by rule and severity (the page's first table), sorted as the page sorts."""
    rows = tuple((rule, severity, n) for (rule, severity), n in sorted(counts.items()))
    return Table("findings", ("rule", "severity", "count"), rows)


QUEUE_COLUMNS: Final = (
    "key", "severity", "rule", "session", "exit", "therapist", "message", "state", "assignee",
    "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
)  # fmt: skip
NOTE_COLUMNS: Final = ("acknowledged_note", "resolved_note")


def review_queue(queue: Sequence[Reviewed], zone: str, *, sees_notes: bool) -> Table:
    """The findings to review, in the page's order; the notes only for `sees_notes`."""
    rows: list[tuple[Cell, ...]] = []
    for item in queue:
        f, r = item.finding, item.review
        row: tuple[Cell, ...] = (
            r.key, f.severity, f.rule, f.session, f.exit, f.therapist, f.message, r.state,
            r.assignee, local_time(r.acknowledged_at, zone), r.acknowledged_by,
            local_time(r.resolved_at, zone), r.resolved_by,
        )  # fmt: skip
        if sees_notes:
            row += (r.acknowledged_note, r.resolved_note)
        rows.append(row)
    columns = QUEUE_COLUMNS + (NOTE_COLUMNS if sees_notes else ())
    return Table("queue", columns, tuple(rows))


def open_concerns(concerns: Iterable[tuple[Concern, Session]], zone: str) -> Table:
    """The client concerns waiting, with their text (only for roles that read concerns)."""
    rows = tuple(
        (
            c.id,
            local_time(c.raised_at, zone),
            s.id,
            local_time(s.start, zone),
            s.therapist,
            s.room,
            c.text,
            local_time(c.acknowledged_at, zone),
        )
        for c, s in concerns
    )
    columns = (
        "concern", "raised_at", "session", "session_start", "therapist", "room", "text",
        "acknowledged_at",
    )  # fmt: skip
    return Table("concerns", columns, rows)


def exit_status(x: Exit, s: Session) -> str:
    """As the overview words it: `out_now`, `signed` or `not_signed`."""
    if x.returned_at is None and s.in_progress:
        return "out_now"
    return "signed" if x.signed_at is not None else "not_signed"


def exits_needing_attention(items: Iterable[tuple[Exit, Session, int]], zone: str) -> Table:
    """Exits needing attention: (exit, its session, how many checklist items are missing)."""
    rows = tuple(
        (x.id, local_time(x.left_at, zone), s.id, s.therapist, x.reason, exit_status(x, s), n)
        for x, s, n in items
    )
    columns = ("exit", "left_at", "session", "therapist", "reason", "status", "missing")
    return Table("exits", columns, rows)


def billing_lines(lines: Iterable[BillingLine]) -> Table:
    """Billing to check: codes joined with single spaces (as `stepout billing --format csv`)."""
    rows = tuple(
        (
            line.session,
            line.gross_minutes,
            line.net_minutes,
            " ".join(line.billed_codes),
            " ".join(line.supported_codes),
            line.status,
        )
        for line in lines
    )
    columns = (
        "session", "gross_minutes", "net_minutes", "billed_codes", "supported_codes", "status",
    )  # fmt: skip
    return Table("billing", columns, rows)


# -- The dashboard.


def figures(name: str, columns: Sequence[str], rows: Iterable[Sequence[Cell]]) -> Table:
    """A chart's figures as its table on the page shows them (`adapters.reports.charts`)."""
    return Table(name, tuple(columns), tuple(tuple(row) for row in rows))


def session_lines(lines: Iterable[SessionLine], zone: str) -> Table:
    """The sessions behind a bar: ids, times and figures, no free text."""
    rows = tuple(
        (
            s.session, local_time(s.start, zone), local_time(s.end, zone), s.therapist, s.room,
            s.exits, s.net_minutes, s.status,
        )
        for s in lines
    )  # fmt: skip
    columns = ("session", "start", "end", "therapist", "room", "exits", "net_minutes", "status")
    return Table("sessions", columns, rows)


# -- Writing a table.


def safe_cell(value: Cell) -> str:
    """A CSV cell: empty for None, and a would-be formula made text with a leading `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def to_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def to_json(table: Table) -> str:
    body = {"table": table.name, "columns": list(table.columns), "rows": table.records()}
    return json.dumps(body, ensure_ascii=False, indent=1)


def file_name(table: Table, practice: str, day: date, extension: str) -> str:
    return f"stepout-{table.name}-{practice}-{day.isoformat()}.{extension}"
