"""The dashboard's charts, declared once (Vega-Lite through altair) from the figures of
`stepout.services.dashboard`, with the same figures as a plain table behind each chart.

The browser draws a chart from its spec (`static/dashboard.js`, vendored vega-embed); the
monthly report draws it on the server as SVG (`to_svg`, vl-convert). The data is inline in
the spec: nothing is fetched. With `links`, each bar carries the address of the sessions
behind it (Vega-Lite's `href` channel: a click opens it); the report's charts carry none.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import altair as alt
import vl_convert

from stepout.domain.instants import to_datetime
from stepout.policy.model import RULE_IDS
from stepout.services.dashboard import Dashboard, DashboardFilter

REASON_LABELS: Final = {
    "technical": "Technical",
    "client_safety": "Client safety",
    "health_emergency": "Health emergency",
    "other": "Other",
    "unclassified": "Unclassified",
}
STATUS_LABELS: Final = {
    "supported": "Supported",
    "undercoded": "Undercoded",
    "unsupported": "Unsupported",
    "not_billed": "Not billed",
}
# Colour-blind-safe (Okabe-Ito), one fixed colour per reason and status on every chart.
REASON_COLOURS: Final = ("#0072B2", "#E69F00", "#D55E00", "#009E73", "#999999")
STATUS_COLOURS: Final = ("#009E73", "#E69F00", "#D55E00", "#999999")
SEVERITY_LABELS: Final = {"violation": "Violation", "warning": "Warning"}
SEVERITY_COLOURS: Final = ("#D55E00", "#E69F00")
ROW_HEIGHT: Final = 34  # the findings chart: one row of bars per rule
WIDTH: Final = 560
HEIGHT: Final = 240
SESSIONS_PATH: Final = "/supervise/dashboard/sessions"

Cell = str | int | float


@dataclass(frozen=True, slots=True)
class Table:
    """A chart's figures for reading (and for screen readers): a header and rows."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    links: tuple[str, ...] = ()  # per row, the sessions behind it (empty: no links)


@dataclass(frozen=True, slots=True)
class Chart:
    id: str  # an HTML id: `exits-by-week`
    title: str
    description: str  # what the chart shows, in one sentence (its accessible name)
    spec: dict[str, Any]  # Vega-Lite, data inline
    table: Table

    @property
    def empty(self) -> bool:
        return not self.table.rows


def reason_label(reason: str) -> str:
    return REASON_LABELS.get(reason, reason)


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def sessions_link(filter_: DashboardFilter, **narrow: str | date | None) -> str:
    """The address of the sessions behind one bar: the dashboard's filter narrowed."""
    values: dict[str, str | date | None] = {
        "from": filter_.date_from,
        "to": filter_.date_to,
        "therapist": filter_.therapist,
        "room": filter_.room,
        "reason": filter_.reason,
    }
    values.update(narrow)
    query = {k: str(v) for k, v in values.items() if v is not None and v != ""}
    return f"{SESSIONS_PATH}?{urlencode(query)}"


def _week_span(filter_: DashboardFilter, monday: date) -> dict[str, date]:
    """A week's dates clipped to the filter's period."""
    return {
        "from": max(monday, filter_.date_from),
        "to": min(monday + timedelta(days=6), filter_.date_to),
    }


def _finish(chart: Any, title: str, description: str) -> dict[str, Any]:
    spec: dict[str, Any] = chart.properties(
        title=title, description=description, width=WIDTH, height=HEIGHT
    ).to_dict()
    spec.pop("config", None)  # altair's defaults; the page and the report size the view
    return spec


def _inline(rows: list[dict[str, Any]]) -> Any:
    return alt.Data(values=rows)  # type: ignore[no-untyped-call]


def _links(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(str(r["href"]) for r in rows if "href" in r)


def _pointer(links: bool) -> dict[str, Any]:
    return {"cursor": "pointer"} if links else {}


def _tooltip(*fields: tuple[str, str, str]) -> list[Any]:
    return [alt.Tooltip(f"{name}:{kind}", title=title) for name, kind, title in fields]


@dataclass(frozen=True, slots=True)
class _Stack:
    """What a chart of weekly stacked bars counts, and how its categories are shown."""

    name: str
    title: str
    description: str
    category: str  # the category's field, and the filter that narrows a link: reason, status
    heading: str  # the category's column heading
    count: str  # the counted field: exits, sessions
    labels: dict[str, str]
    colours: tuple[str, ...]


def _weekly_stack(
    d: Dashboard, stack: _Stack, counts: list[tuple[date, str, int]], links: bool
) -> Chart:
    """Stacked bars of `counts` (week's Monday, category, count), with their table."""
    order = list(stack.labels)
    rows = [
        {
            "week": week.isoformat(),
            stack.category: stack.labels.get(key, key),
            stack.count: n,
            "order": order.index(key) if key in order else len(order),
            **(
                {
                    "href": sessions_link(
                        d.filter, **{stack.category: key}, **_week_span(d.filter, week)
                    )
                }
                if links
                else {}
            ),
        }
        for week, key, n in counts
    ]
    heading, count = stack.heading, stack.count.capitalize()
    encoding: dict[str, Any] = {
        "x": alt.X("week:O", title="Week of", axis=alt.Axis(labelAngle=-45)),
        "y": alt.Y(f"sum({stack.count}):Q", title=count, axis=alt.Axis(tickMinStep=1)),
        "color": alt.Color(
            f"{stack.category}:N",
            title=heading,
            scale=alt.Scale(domain=list(stack.labels.values()), range=list(stack.colours)),
        ),
        "order": alt.Order("order:Q"),
        "tooltip": _tooltip(
            ("week", "O", "Week of"),
            (stack.category, "N", heading),
            (stack.count, "Q", count),
        ),
    }
    if links:
        encoding["href"] = alt.Href("href:N")
    chart = alt.Chart(_inline(rows)).mark_bar(**_pointer(links)).encode(**encoding)
    table = Table(
        ("Week of", heading, count),
        tuple((week.isoformat(), stack.labels.get(key, key), n) for week, key, n in counts),
        _links(rows),
    )
    finished = _finish(chart, stack.title, stack.description)
    return Chart(stack.name, stack.title, stack.description, finished, table)


EXITS_BY_WEEK: Final = _Stack(
    "exits-by-week",
    "Exits per week, by reason",
    "Stacked bars: how many exits each week (weeks start on Monday), by reason.",
    "reason",
    "Reason",
    "exits",
    REASON_LABELS,
    REASON_COLOURS,
)
BILLING_BY_WEEK: Final = _Stack(
    "billing-by-week",
    "Billing status per week",
    "Stacked bars: each week's sessions by billing status (whether the face-to-face minutes "
    "net of exits support the billed codes).",
    "status",
    "Billing",
    "sessions",
    STATUS_LABELS,
    STATUS_COLOURS,
)


def exits_by_week(d: Dashboard, links: bool = False) -> Chart:
    counts = [(r.week, r.reason, r.exits) for r in d.exits_by_week]
    return _weekly_stack(d, EXITS_BY_WEEK, counts, links)


def therapist_share(d: Dashboard, links: bool = False) -> Chart:
    t = d.threshold
    title = "Share of sessions with an exit, per therapist"
    limit = f"{t.max_share:.0%}"
    description = (
        f"Bars: the share of each therapist's sessions with at least one exit; the line is the "
        f"policy's threshold of {limit} (from {t.min_sessions} sessions on)."
    )
    rows = [
        {
            "therapist": row.therapist,
            "share": row.share,
            "sessions": row.sessions,
            "with_exits": row.sessions_with_exits,
            "above": "above the threshold" if row.above_threshold else "within",
            **(
                {"href": sessions_link(d.filter, therapist=row.therapist, exited="1")}
                if links
                else {}
            ),
        }
        for row in d.therapists
    ]
    encoding: dict[str, Any] = {
        "x": alt.X("therapist:N", title="Therapist", sort=None, axis=alt.Axis(labelAngle=-45)),
        "y": alt.Y("share:Q", title="Sessions with an exit", axis=alt.Axis(format="%")),
        "color": alt.Color(
            "above:N",
            title="Policy",
            scale=alt.Scale(domain=["within", "above the threshold"], range=["#0072B2", "#D55E00"]),
        ),
        "tooltip": [
            alt.Tooltip("therapist:N", title="Therapist"),
            alt.Tooltip("share:Q", title="Share", format=".1%"),
            alt.Tooltip("with_exits:Q", title="Sessions with an exit"),
            alt.Tooltip("sessions:Q", title="Sessions"),
        ],
    }
    if links:
        encoding["href"] = alt.Href("href:N")
    bars = alt.Chart(_inline(rows)).mark_bar(**_pointer(links)).encode(**encoding)
    rule = (
        alt.Chart(_inline([{"threshold": t.max_share, "label": f"threshold {limit}"}]))
        .mark_rule(color="#000000", strokeDash=[6, 4], size=2)
        .encode(y="threshold:Q", tooltip=alt.Tooltip("label:N", title="Policy"))
    )
    chart = alt.layer(bars, rule)
    table = Table(
        ("Therapist", "Sessions", "With an exit", "Share", "Above the threshold"),
        tuple(
            (
                r.therapist,
                r.sessions,
                r.sessions_with_exits,
                f"{r.share:.1%}",
                "yes" if r.above_threshold else "no",
            )
            for r in d.therapists
        ),
        _links(rows),
    )
    return Chart("therapist-share", title, description, _finish(chart, title, description), table)


def _minutes(value: float) -> float:
    return round(value, 1)


def absences(d: Dashboard, links: bool = False) -> Chart:
    title = "How long therapists were away, by reason"
    description = (
        "Box plot, minutes away per exit: the line runs from the shortest to the longest, "
        "the box from the first to the third quartile, the tick is the median."
    )
    rows = [
        {
            "reason": reason_label(a.reason),
            "exits": a.exits,
            "min": _minutes(a.minimum),
            "q1": _minutes(a.q1),
            "median": _minutes(a.median),
            "q3": _minutes(a.q3),
            "max": _minutes(a.maximum),
            "mean": _minutes(a.mean),
            **({"href": sessions_link(d.filter, reason=a.reason)} if links else {}),
        }
        for a in d.absences
    ]
    base = alt.Chart(_inline(rows)).encode(
        y=alt.Y("reason:N", title="Reason", sort=list(REASON_LABELS.values())),
        tooltip=[
            alt.Tooltip("reason:N", title="Reason"),
            alt.Tooltip("exits:Q", title="Exits"),
            alt.Tooltip("min:Q", title="Shortest (min)"),
            alt.Tooltip("median:Q", title="Median (min)"),
            alt.Tooltip("max:Q", title="Longest (min)"),
        ],
    )
    whisker = base.mark_rule(color="#444444").encode(
        x=alt.X("min:Q", title="Minutes away"), x2="max:Q"
    )
    box_encoding: dict[str, Any] = {
        "x": "q1:Q",
        "x2": "q3:Q",
        "color": alt.Color(
            "reason:N",
            legend=None,
            scale=alt.Scale(domain=list(REASON_LABELS.values()), range=list(REASON_COLOURS)),
        ),
    }
    if links:
        box_encoding["href"] = alt.Href("href:N")
    box = base.mark_bar(size=18, **_pointer(links)).encode(**box_encoding)
    median = base.mark_tick(color="#000000", size=18, thickness=2).encode(x="median:Q")
    chart = alt.layer(whisker, box, median)
    table = Table(
        (
            "Reason",
            "Exits",
            "Shortest",
            "First quartile",
            "Median",
            "Third quartile",
            "Longest",
            "Mean",
        ),
        tuple(
            (
                reason_label(a.reason),
                a.exits,
                _minutes(a.minimum),
                _minutes(a.q1),
                _minutes(a.median),
                _minutes(a.q3),
                _minutes(a.maximum),
                _minutes(a.mean),
            )
            for a in d.absences
        ),
        _links(rows),
    )
    return Chart("absences", title, description, _finish(chart, title, description), table)


def billing_by_week(d: Dashboard, links: bool = False) -> Chart:
    counts = [(r.week, r.status, r.sessions) for r in d.billing_by_week]
    return _weekly_stack(d, BILLING_BY_WEEK, counts, links)


def severity_label(severity: str) -> str:
    return SEVERITY_LABELS.get(severity, severity)


def computed_label(d: Dashboard) -> str:
    """When the findings were computed, in the practice's time zone (`2026-12-07 09:15`)."""
    if d.findings is None:
        return ""
    local = to_datetime(d.findings.computed).astimezone(ZoneInfo(d.timezone))
    return local.strftime("%Y-%m-%d %H:%M")


def findings_by_week(d: Dashboard, links: bool = False) -> Chart:
    """Findings per week (of the session's start), one row of bars per rule, each bar
    stacked by severity. From the findings store (`d.findings`); empty when not read."""
    title = "Findings per week, by rule and severity"
    counts = d.findings.counts if d.findings is not None else ()
    computed = computed_label(d)
    description = (
        "Bars in one row per rule, each row on its own scale: how many findings each week (by "
        "the session's start, weeks start on Monday), violations and warnings stacked"
        + (f"; audit computed {computed} ({d.timezone})" if computed else "")
        + "."
    )
    order = {r: i for i, r in enumerate(RULE_IDS)}
    rows = [
        {
            "week": c.week.isoformat(),
            "rule": c.rule,
            "severity": severity_label(c.severity),
            "findings": c.findings,
            "order": 0 if c.severity == "violation" else 1,
            **(
                {
                    "href": sessions_link(
                        d.filter, rule=c.rule, severity=c.severity, **_week_span(d.filter, c.week)
                    )
                }
                if links
                else {}
            ),
        }
        for c in sorted(counts, key=lambda c: (c.week, order.get(c.rule, len(order)), c.severity))
    ]
    rules = sorted({c.rule for c in counts}, key=lambda r: order.get(r, len(order)))
    weeks = sorted({c.week.isoformat() for c in counts})
    encoding: dict[str, Any] = {
        "x": alt.X(
            "week:O", title="Week of", scale=alt.Scale(domain=weeks), axis=alt.Axis(labelAngle=-45)
        ),
        "y": alt.Y(
            "sum(findings):Q",
            title=None,
            axis=alt.Axis(tickMinStep=1, tickCount=2, grid=False),
        ),
        "row": alt.Row(
            "rule:N",
            sort=rules,
            title=None,
            header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=190, labelFontSize=11),
        ),
        "color": alt.Color(
            "severity:N",
            title="Severity",
            scale=alt.Scale(domain=list(SEVERITY_LABELS.values()), range=list(SEVERITY_COLOURS)),
        ),
        "order": alt.Order("order:Q"),
        "tooltip": _tooltip(
            ("rule", "N", "Rule"),
            ("week", "O", "Week of"),
            ("severity", "N", "Severity"),
            ("findings", "Q", "Findings"),
        ),
    }
    if links:
        encoding["href"] = alt.Href("href:N")
    chart = (
        alt.Chart(_inline(rows))
        .mark_bar(**_pointer(links))
        .encode(**encoding)
        .properties(title=title, description=description, width=WIDTH - 150, height=ROW_HEIGHT)
    )
    spec: dict[str, Any] = chart.resolve_scale(y="independent").to_dict()
    # Each row its own scale (its axis says it): a rule found rarely still shows its weeks.
    spec["config"] = {"facet": {"spacing": 6}}  # only this: the page and the report style the rest
    table = Table(
        ("Week of", "Rule", "Severity", "Findings"),
        tuple((r["week"], r["rule"], r["severity"], r["findings"]) for r in rows),
        _links(rows),
    )
    return Chart("findings-by-week", title, description, spec, table)


BUILDERS: Final[tuple[Callable[[Dashboard, bool], Chart], ...]] = (
    exits_by_week,
    therapist_share,
    absences,
    findings_by_week,
    billing_by_week,
)


def charts(d: Dashboard, links: bool = False) -> list[Chart]:
    """Every chart of the dashboard, in the order the page and the report show them."""
    return [build(d, links) for build in BUILDERS]


def to_svg(chart: Chart) -> str:
    """The chart drawn on the server (vl-convert, no network: `allowed_base_urls=[]`)."""
    svg: str = vl_convert.vegalite_to_svg(chart.spec, allowed_base_urls=[])
    return svg
