"""The supervisor's dashboard page: its charts' specs and tables for the filter, the read in
the audit trail, refused to a therapist as the matrix says, and the sessions behind a bar."""

import re
from typing import Any

import orjson

from stepout.domain.permissions import ROUTES, roles_for
from tests.web.conftest import Web
from tests.web.pages_support import browser, login
from tests.web.test_api_support import exit_line, import_records, jsonl, ok, session_line
from tests.web.test_audit_web import trail

PERIOD = {"from": "2026-02-01", "to": "2026-02-28"}
SPEC = re.compile(r'<script type="application/json" id="([a-z-]+)-spec">(.*?)</script>', re.S)


def _records(web: Web) -> None:
    """pa: s-1 (a-ther, room-1, 2 Feb) with a technical exit of 3 minutes; s-2 (a-ther2,
    room-2, 3 Feb) with a client-safety exit of 10; s-3 (a-ther, room-2, 10 Feb) without.
    pb: s-b, with an exit (never on pa's dashboard)."""
    ok(
        import_records(
            web,
            jsonl(
                session_line("s-1", billed_codes=["90834"]),
                exit_line("e-1", "s-1"),
                session_line(
                    "s-2",
                    therapist="a-ther2",
                    room="room-2",
                    start="2026-02-03T10:00:00+00:00",
                    end="2026-02-03T10:55:00+00:00",
                ),
                exit_line(
                    "e-2",
                    "s-2",
                    reason="client_safety",
                    left_at="2026-02-03T10:10:00+00:00",
                    returned_at="2026-02-03T10:20:00+00:00",
                ),
                session_line(
                    "s-3",
                    room="room-2",
                    start="2026-02-10T10:00:00+00:00",
                    end="2026-02-10T10:55:00+00:00",
                ),
            ),
        )
    )
    ok(
        import_records(
            web,
            jsonl(
                session_line("s-b", practice="pb", therapist="b-ther"),
                exit_line("e-b", "s-b", reason="other"),
            ),
            "b-admin",
        )
    )


def specs(html: str) -> dict[str, dict[str, Any]]:
    return {name: orjson.loads(body) for name, body in SPEC.findall(html)}


def values(spec: dict[str, Any], layer: int = 0) -> list[dict[str, Any]]:
    data = spec.get("data") or spec["layer"][layer]["data"]
    found: list[dict[str, Any]] = data["values"]
    return found


def test_the_dashboard_shows_the_practices_charts_with_their_tables(web: Web) -> None:
    _records(web)
    client = browser(web)
    login(client, "a-super")
    before = len(trail(web))
    r = client.get("/supervise/dashboard", params=PERIOD)
    assert r.status_code == 200, r.text
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    found = specs(r.text)
    assert sorted(found) == ["absences", "billing-by-week", "exits-by-week", "therapist-share"]
    weeks = [(v["week"], v["reason"], v["exits"]) for v in values(found["exits-by-week"])]
    assert weeks == [("2026-02-02", "Technical", 1), ("2026-02-02", "Client safety", 1)]
    shares = {v["therapist"]: v["with_exits"] for v in values(found["therapist-share"])}
    assert shares == {"a-ther": 1, "a-ther2": 1}
    assert "b-ther" not in r.text
    assert r.text.count("<table") == 4  # a table behind every chart
    assert '<a href="/supervise/dashboard" aria-current="page">Dashboard</a>' in r.text
    for src in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "vega-interpreter.js"):
        assert f'src="/static/vendor/vega/{src}"' in r.text
    (entry,) = trail(web)[before:]
    assert (entry.action, entry.target, entry.outcome, entry.item_count) == (
        "dashboard.read",
        "2026-02-01..2026-02-28",
        "ok",
        3,
    )


def test_the_filter_narrows_every_chart(web: Web) -> None:
    _records(web)
    client = browser(web)
    login(client, "a-super")
    r = client.get("/supervise/dashboard", params={**PERIOD, "room": "room-2"})
    found = specs(r.text)
    weeks = [(v["reason"], v["exits"]) for v in values(found["exits-by-week"])]
    assert weeks == [("Client safety", 1)]
    assert 'id="f-room"' in r.text
    assert '<option value="room-2" selected>' in r.text
    r = client.get("/supervise/dashboard", params={**PERIOD, "reason": "technical"})
    weeks = [(v["reason"], v["exits"]) for v in values(specs(r.text)["exits-by-week"])]
    assert weeks == [("Technical", 1)]
    r = client.get("/supervise/dashboard", params={**PERIOD, "therapist": "a-ther2"})
    assert [v["therapist"] for v in values(specs(r.text)["therapist-share"])] == ["a-ther2"]


def test_a_bar_leads_to_the_sessions_behind_it(web: Web) -> None:
    _records(web)
    client = browser(web)
    login(client, "a-super")
    r = client.get("/supervise/dashboard", params=PERIOD)
    (bar,) = [v for v in values(specs(r.text)["exits-by-week"]) if v["reason"] == "Technical"]
    listed = client.get(bar["href"])
    assert listed.status_code == 200, listed.text
    assert "/console/sessions/s-1" in listed.text
    assert "/console/sessions/s-2" not in listed.text
    assert trail(web)[-1].action == "session.list"


def test_the_months_report_downloads_from_the_dashboard(web: Web) -> None:
    _records(web)
    client = browser(web)
    login(client, "a-super")
    page = client.get("/supervise/dashboard", params=PERIOD)
    assert '/supervise/dashboard/report?month=2026-02"' in page.text
    r = client.get("/supervise/dashboard/report", params={"month": "2026-02"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert "<script" not in r.text
    assert r.text.count("<svg") == 4
    assert '<li data-figure="sessions"><span class="num">3</span>' in r.text
    assert "b-ther" not in r.text
    entry = trail(web)[-1]
    assert (entry.action, entry.target, entry.item_count) == (
        "report.export",
        "2026-02-01..2026-02-28",
        3,
    )
    assert client.get("/supervise/dashboard/report", params={"month": "2026-2"}).status_code == 422


def test_bad_filters_are_refused_with_the_field(web: Web) -> None:
    client = browser(web)
    login(client, "a-super")
    r = client.get("/supervise/dashboard", params={"from": "2026-02-30"})
    assert r.status_code == 422
    assert "from" in r.text
    r = client.get("/supervise/dashboard", params={**PERIOD, "reason": "lunch"})
    assert r.status_code == 422
    assert "reason" in r.text
    r = client.get("/supervise/dashboard", params={"from": "2026-03-01", "to": "2026-02-01"})
    assert r.status_code == 422


def test_only_the_roles_of_the_matrix_see_the_dashboard(web: Web) -> None:
    allowed = roles_for(ROUTES["GET /supervise/dashboard"])
    assert allowed == {"admin", "supervisor"}
    for username, role in (
        ("a-super", "supervisor"),
        ("a-admin", "admin"),
        ("a-ther", "therapist"),
        ("a-bill", "biller"),
    ):
        client = browser(web)
        login(client, username)
        r = client.get("/supervise/dashboard", params=PERIOD)
        assert r.status_code == (200 if role in allowed else 403), (username, r.status_code)
        listed = client.get("/supervise/dashboard/sessions", params=PERIOD)
        assert listed.status_code == (200 if role in allowed else 403), username
        got = client.get("/supervise/dashboard/report", params={"month": "2026-02"})
        assert got.status_code == (200 if role in allowed else 403), username
        nav = '<a href="/supervise/dashboard"'
        home = client.get("/console" if role == "therapist" else "/supervise").text
        assert (nav in home) == (role in allowed), username
