"""The charts carry the dashboard's figures (spec data and table alike), link each bar to the
sessions behind it when asked, and draw on the server as SVG."""

from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from stepout.adapters.reports import charts
from stepout.domain.instants import parse_instant
from stepout.services.dashboard import (
    AbsenceSummary,
    Dashboard,
    DashboardFilter,
    ExitRateThreshold,
    FindingsByWeek,
    TherapistShare,
    Totals,
    WeekReasonCount,
    WeekRuleCount,
    WeekStatusCount,
)

W1, W2 = date(2026, 11, 2), date(2026, 11, 9)


def dashboard(**changes: Any) -> Dashboard:
    values: dict[str, Any] = {
        "filter": DashboardFilter("pa", date(2026, 11, 1), date(2026, 11, 30)),
        "timezone": "Europe/Berlin",
        "threshold": ExitRateThreshold(True, 10, 0.05, "1"),
        "totals": Totals(sessions=40, sessions_with_exits=5, exits=6, therapists=2),
        "exits_by_week": (
            WeekReasonCount(W1, "technical", 3),
            WeekReasonCount(W1, "client_safety", 1),
            WeekReasonCount(W2, "health_emergency", 2),
        ),
        "therapists": (
            TherapistShare("t-1", 20, 4, 0.2, True),
            TherapistShare("t-2", 20, 1, 0.05, False),
        ),
        "absences": (
            AbsenceSummary("technical", 3, 1.0, 1.5, 2.0, 4.0, 6.25, 3.0),
            AbsenceSummary("client_safety", 1, 12.0, 12.0, 12.0, 12.0, 12.0, 12.0),
        ),
        "absence_bins": (),
        "billing_by_week": (
            WeekStatusCount(W1, "supported", 17),
            WeekStatusCount(W1, "unsupported", 2),
            WeekStatusCount(W2, "undercoded", 1),
        ),
        "findings": FindingsByWeek(
            (
                WeekRuleCount(W1, "no-check-in", "warning", 2),
                WeekRuleCount(W1, "client-unattended", "violation", 1),
                WeekRuleCount(W1, "client-unattended", "warning", 3),
                WeekRuleCount(W2, "client-not-informed", "violation", 4),
            ),
            parse_instant("2026-12-01T08:30:00+00:00"),
            "1",
            about_therapists=1,
        ),
    }
    values.update(changes)
    return Dashboard(**values)


def values_of(spec: dict[str, Any], layer: int | None = None) -> list[dict[str, Any]]:
    part = spec if layer is None else spec["layer"][layer]
    data = part.get("data") or spec["data"]
    rows: list[dict[str, Any]] = data["values"]
    return rows


def test_every_chart_has_an_id_a_description_and_a_table() -> None:
    made = charts.charts(dashboard())
    assert [c.id for c in made] == [
        "exits-by-week",
        "therapist-share",
        "absences",
        "findings-by-week",
        "billing-by-week",
    ]
    for c in made:
        assert c.spec["description"] == c.description
        assert c.spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v")
        assert c.table.rows
        assert all(len(r) == len(c.table.columns) for r in c.table.rows)


def test_exits_per_week_carry_the_counts_by_reason() -> None:
    c = charts.exits_by_week(dashboard())
    got = [(v["week"], v["reason"], v["exits"]) for v in values_of(c.spec)]
    assert got == [
        ("2026-11-02", "Technical", 3),
        ("2026-11-02", "Client safety", 1),
        ("2026-11-09", "Health emergency", 2),
    ]
    assert list(c.table.rows) == got
    assert c.spec["encoding"]["y"]["aggregate"] == "sum"
    assert "href" not in c.spec["encoding"]


def test_the_share_per_therapist_is_drawn_against_the_threshold() -> None:
    c = charts.therapist_share(dashboard())
    bars, rule = values_of(c.spec, 0), values_of(c.spec, 1)
    assert [(v["therapist"], v["share"], v["above"]) for v in bars] == [
        ("t-1", 0.2, "above the threshold"),
        ("t-2", 0.05, "within"),
    ]
    assert rule == [{"threshold": 0.05, "label": "threshold 5%"}]
    assert c.spec["layer"][1]["mark"]["type"] == "rule"
    assert c.table.rows[0] == ("t-1", 20, 4, "20.0%", "yes")


def test_absences_are_a_box_per_reason() -> None:
    c = charts.absences(dashboard())
    rows = values_of(c.spec)
    assert [(v["reason"], v["min"], v["q1"], v["median"], v["q3"], v["max"]) for v in rows] == [
        ("Technical", 1.0, 1.5, 2.0, 4.0, 6.2),
        ("Client safety", 12.0, 12.0, 12.0, 12.0, 12.0),
    ]
    assert [layer["mark"]["type"] for layer in c.spec["layer"]] == ["rule", "bar", "tick"]


def test_billing_per_week_by_status() -> None:
    c = charts.billing_by_week(dashboard())
    got = [(v["week"], v["status"], v["sessions"]) for v in values_of(c.spec)]
    assert got == [
        ("2026-11-02", "Supported", 17),
        ("2026-11-02", "Unsupported", 2),
        ("2026-11-09", "Undercoded", 1),
    ]


def test_with_links_every_bar_leads_to_its_sessions() -> None:
    d = dashboard(filter=DashboardFilter("pa", date(2026, 11, 4), date(2026, 11, 30), room="r-1"))
    c = charts.exits_by_week(d, links=True)
    assert c.spec["encoding"]["href"]["field"] == "href"
    first = values_of(c.spec)[0]["href"]
    url = urlsplit(first)
    assert url.path == charts.SESSIONS_PATH
    assert parse_qs(url.query) == {
        "from": ["2026-11-04"],  # the week clipped to the period
        "to": ["2026-11-08"],
        "room": ["r-1"],
        "reason": ["technical"],
    }
    billing = charts.billing_by_week(d, links=True)
    assert parse_qs(urlsplit(values_of(billing.spec)[1]["href"]).query)["status"] == ["unsupported"]
    share = charts.therapist_share(d, links=True)
    query = parse_qs(urlsplit(values_of(share.spec, 0)[0]["href"]).query)
    assert (query["therapist"], query["exited"]) == (["t-1"], ["1"])  # sessions with an exit
    found = charts.findings_by_week(d, links=True)
    query = parse_qs(urlsplit(values_of(found.spec)[0]["href"]).query)
    assert query == {
        "from": ["2026-11-04"],
        "to": ["2026-11-08"],
        "room": ["r-1"],
        "rule": ["client-unattended"],
        "severity": ["violation"],
    }
    assert found.table.links == tuple(v["href"] for v in values_of(found.spec))


def test_findings_per_week_by_rule_and_severity() -> None:
    c = charts.findings_by_week(dashboard())
    got = [(v["week"], v["rule"], v["severity"], v["findings"]) for v in values_of(c.spec)]
    assert got == [  # by week, then in the policy's order of rules, violations first
        ("2026-11-02", "client-unattended", "Violation", 1),
        ("2026-11-02", "client-unattended", "Warning", 3),
        ("2026-11-02", "no-check-in", "Warning", 2),
        ("2026-11-09", "client-not-informed", "Violation", 4),
    ]
    assert c.table.rows[0] == ("2026-11-02", "client-unattended", "Violation", 1)
    assert c.spec["encoding"]["row"]["field"] == "rule"
    assert c.spec["encoding"]["row"]["sort"] == [
        "client-not-informed",
        "client-unattended",
        "no-check-in",
    ]
    assert c.spec["encoding"]["color"]["field"] == "severity"
    assert "audit computed 2026-12-01 09:30 (Europe/Berlin)" in c.description
    assert charts.findings_by_week(dashboard(findings=None)).empty


def test_an_empty_dashboard_has_empty_charts() -> None:
    d = dashboard(
        exits_by_week=(),
        therapists=(),
        absences=(),
        billing_by_week=(),
        findings=FindingsByWeek((), 0, "1"),
    )
    for c in charts.charts(d):
        assert c.empty


@pytest.mark.parametrize("build", charts.BUILDERS, ids=lambda b: b.__name__)
def test_each_chart_renders_as_svg(build: Any) -> None:
    c = build(dashboard(), False)
    svg = charts.to_svg(c)
    assert svg.lstrip().startswith("<svg")
    assert c.title in svg
    assert "http://" not in svg.replace("http://www.w3.org/", "")
    assert "https://" not in svg
