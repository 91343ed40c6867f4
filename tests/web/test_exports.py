"""The pages' tables as CSV and JSON downloads (`/supervise/export/...`): the page's rows for
the same filter, the page's roles (403 otherwise), nothing of another practice, formula cells
neutralised in CSV, and every download in the audit trail."""

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from stepout.domain.permissions import ROUTES, roles_for
from stepout.services.tables import Table, safe_cell, to_csv
from stepout.web.pages.exports import CHART_TABLES, OVERVIEW_TABLES, TABLES, path_of
from tests.web.conftest import FakeClock, Web, make_web
from tests.web.pages_support import browser, login
from tests.web.test_api_support import exit_line, import_records, jsonl, ok, session_line
from tests.web.test_audit_web import trail
from tests.web.test_dashboard_page import PERIOD, SPEC

FORMULA = '=HYPERLINK("http://evil.example","click")'
USERS = {"supervisor": "a-super", "admin": "a-admin", "therapist": "a-ther", "biller": "a-bill"}


@pytest.fixture
def feb(tmp_path: Path) -> Iterator[Web]:
    """The app on SQLite on 5 Feb 2026, with pa's and pb's records of the days before."""
    clock = FakeClock("2026-02-05T15:00:00+00:00")
    for web in make_web(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path, clock):
        _records(web)
        yield web


def _records(web: Web) -> None:
    """pa: s-1 (a-ther, 2 Feb, billed 90837 for 52 minutes) with an unsigned technical exit and
    a concern whose text looks like a formula; s-2 (a-ther2, 3 Feb) with an unsigned
    client-safety exit. pb: s-b with an exit and a concern (never in pa's downloads)."""
    concern = {"kind": "concern", "id": "k-1", "session": "s-1"}
    concern |= {"raised_at": "2026-02-02T11:30:00+00:00", "text": FORMULA}
    ok(
        import_records(
            web,
            jsonl(
                session_line("s-1", billed_codes=["90837"]),
                exit_line("e-1", "s-1"),
                concern,
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
            ),
        )
    )
    b_concern = {"kind": "concern", "id": "k-b", "session": "s-b", "text": "B's concern"}
    b_concern["raised_at"] = "2026-02-02T11:30:00+00:00"
    ok(
        import_records(
            web,
            jsonl(
                session_line("s-b", practice="pb", therapist="b-ther", billed_codes=["90837"]),
                exit_line("e-b", "s-b", reason="other"),
                b_concern,
            ),
            "b-admin",
        )
    )


def section(page: str, heading: str) -> str:
    """The part of the page under the heading of id `heading`."""
    start = page.index(f'id="{heading}"')
    return page[start : page.index("</section>", start)]


def signed_in(web: Web, role: str) -> TestClient:
    client = browser(web)
    login(client, USERS[role])
    return client


def rows(client: TestClient, table: str, **params: str) -> list[dict[str, Any]]:
    r = client.get(path_of(table, "json"), params=params)
    assert r.status_code == 200, r.text
    body = orjson.loads(r.content)
    assert body["table"] == table
    found: list[dict[str, Any]] = body["rows"]
    assert all(list(row) == body["columns"] for row in found)
    return found


def csv_rows(client: TestClient, table: str, **params: str) -> list[list[str]]:
    r = client.get(path_of(table, "csv"), params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(r.content.decode("utf-8"))))


def test_the_overviews_tables_are_the_pages_rows(feb: Web) -> None:
    client = signed_in(feb, "supervisor")
    page = client.get("/supervise").text
    exits = rows(client, "exits")
    assert [x["exit"] for x in exits] == re.findall(
        r'href="/console/exits/([^"]+)"', section(page, "exits-h")
    )
    assert [(x["exit"], x["therapist"], x["reason"], x["status"]) for x in exits] == [
        ("e-2", "a-ther2", "client_safety", "not_signed"),
        ("e-1", "a-ther", "technical", "not_signed"),
    ]
    assert exits[1]["left_at"] == "2026-02-02T10:20:00+00:00"
    assert "Fetching a charger." not in str(exits)  # the exit's explanation: not on the page
    concerns = rows(client, "concerns")
    assert [(c["concern"], c["session"], c["text"]) for c in concerns] == [("k-1", "s-1", FORMULA)]
    billing = rows(client, "billing")
    assert [b["session"] for b in billing] == re.findall(
        r'<td><a href="/console/sessions/([^"]+)">', section(page, "billing-h")
    )
    assert billing[0]["billed_codes"] == "90837"
    queue = rows(client, "queue")
    assert [q["key"] for q in queue] == re.findall(r'<li class="card" id="finding-([^"]+)"', page)
    assert queue
    assert {"acknowledged_note", "resolved_note"} <= set(queue[0])
    counts = rows(client, "findings")
    page_counts = re.findall(r"<tr><td>([a-z-]+)</td><td>([a-z]+)</td><td>(\d+)</td></tr>", page)
    assert [(c["rule"], c["severity"], str(c["count"])) for c in counts] == page_counts
    assert sum(c["count"] for c in counts) == len(queue)


def test_csv_has_a_header_quotes_and_neutralises_formulas(feb: Web) -> None:
    client = signed_in(feb, "supervisor")
    r = client.get(path_of("concerns", "csv"))
    assert r.headers["content-disposition"] == (
        'attachment; filename="stepout-concerns-pa-2026-02-05.csv"'
    )
    assert r.headers["cache-control"] == "no-store"
    (header, row) = csv_rows(client, "concerns")
    assert header[:3] == ["concern", "raised_at", "session"]
    assert row[header.index("text")] == "'" + FORMULA  # text, not a formula
    assert '"\'=HYPERLINK(""http://evil.example"",""click"")"' in r.text  # RFC 4180 quoting
    assert r.content.endswith(b"\r\n")
    json_r = client.get(path_of("concerns", "json"))
    assert json_r.headers["content-disposition"].endswith('-pa-2026-02-05.json"')


def test_every_formula_start_is_neutralised() -> None:
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(bad) == "'" + bad
    assert (safe_cell(-3), safe_cell(None), safe_cell("a=b")) == ("-3", "", "a=b")
    text = to_csv(Table("t", ("a", "b"), (("x,y", 'say "hi"'),)))
    assert text == 'a,b\r\n"x,y","say ""hi"""\r\n'


def test_each_table_needs_the_pages_roles(feb: Web) -> None:
    for role, username in USERS.items():
        client = browser(feb)
        login(client, username)
        for table in TABLES:
            allowed = roles_for(ROUTES[f"GET {path_of(table, 'csv')}"])
            params = PERIOD if table not in OVERVIEW_TABLES else {}
            for ext in ("csv", "json"):
                r = client.get(path_of(table, ext), params=params)
                expected = 200 if role in allowed else 403
                assert r.status_code == expected, (role, table, ext, r.status_code)
    assert roles_for(ROUTES["GET /supervise/export/concerns.json"]) == {"admin", "supervisor"}
    assert roles_for(ROUTES["GET /supervise/export/billing.json"]) == {
        "admin",
        "supervisor",
        "biller",
    }
    assert roles_for(ROUTES["GET /supervise/export/sessions.csv"]) == {"admin", "supervisor"}


def test_a_biller_gets_no_review_notes(feb: Web) -> None:
    client = signed_in(feb, "biller")
    queue = rows(client, "queue")
    assert queue
    assert "acknowledged_note" not in queue[0]
    assert "resolved_note" not in queue[0]


def test_nothing_of_another_practice(feb: Web) -> None:
    client = signed_in(feb, "supervisor")
    for table in TABLES:
        params = PERIOD if table not in OVERVIEW_TABLES else {}
        for ext in ("csv", "json"):
            text = client.get(path_of(table, ext), params=params).text
            for b in ("s-b", "e-b", "k-b", "b-ther", "B's concern"):
                assert not re.search(rf"(?<![\w-]){b}(?![\w-])", text), (table, ext, b)
    # B's therapist as a filter: nothing (the filter narrows pa's records only).
    assert rows(client, "sessions", **PERIOD, therapist="b-ther") == []


def test_every_download_is_in_the_audit_trail(feb: Web) -> None:
    client = signed_in(feb, "supervisor")
    before = len(trail(feb))
    exits = rows(client, "exits")
    (entry,) = trail(feb)[before:]
    assert (entry.action, entry.target, entry.outcome, entry.item_count) == (
        "table.export",
        "list",
        "ok",
        len(exits),
    )
    queue = rows(client, "queue")
    entry = trail(feb)[-1]
    assert (entry.action, entry.target, entry.item_count) == (
        "table.export",
        "2026-01-29..end",
        len(queue),
    )
    csv_rows(client, "sessions", **PERIOD)
    entry = trail(feb)[-1]
    assert (entry.action, entry.target, entry.item_count) == (
        "table.export",
        "2026-02-01..2026-02-28",
        2,
    )
    refused = len(trail(feb))
    biller = signed_in(feb, "biller")
    assert biller.get(path_of("concerns", "csv")).status_code == 403
    assert [e.action for e in trail(feb)[refused:]][-1] == "access.refused"


def test_the_dashboards_tables_are_the_pages_rows(feb: Web) -> None:
    client = signed_in(feb, "supervisor")
    page = client.get("/supervise/dashboard", params=PERIOD).text
    assert sorted(name for name, _ in SPEC.findall(page)) == sorted(CHART_TABLES)
    cells = re.findall(r"<tr>((?:<td>[^<]*</td>)+)", page)
    page_rows = [re.findall(r"<td>([^<]*)</td>", c) for c in cells]
    exported: list[list[str]] = []
    for table in CHART_TABLES:
        exported += [[str(v) for v in row.values()] for row in rows(client, table, **PERIOD)]
    assert exported == [[cell.replace("&#39;", "'") for cell in row] for row in page_rows]
    narrowed = rows(client, "exits-by-week", **PERIOD, room="room-2")
    assert [r["Exits"] for r in narrowed] == [1]


def test_the_sessions_behind_a_bar_are_the_drill_downs_rows(feb: Web) -> None:
    client = signed_in(feb, "supervisor")
    params = {**PERIOD, "reason": "technical"}
    page = client.get("/supervise/dashboard/sessions", params=params).text
    listed = rows(client, "sessions", **params)
    assert [s["session"] for s in listed] == re.findall(r'href="/console/sessions/([^"]+)"', page)
    assert [(s["session"], s["therapist"], s["exits"]) for s in listed] == [("s-1", "a-ther", 1)]
    (header, *lines) = csv_rows(client, "sessions", **PERIOD)
    assert header == [
        "session", "start", "end", "therapist", "room", "exits", "net_minutes", "status",
    ]  # fmt: skip
    assert [line[0] for line in lines] == ["s-1", "s-2"]
    assert client.get(path_of("sessions", "csv"), params={"from": "x"}).status_code == 422


def test_the_pages_link_their_downloads(feb: Web) -> None:
    client = signed_in(feb, "supervisor")
    page = client.get("/supervise").text
    for table in OVERVIEW_TABLES:
        for ext in ("csv", "json"):
            assert f'href="{path_of(table, ext)}" download' in page, table
    dash = client.get("/supervise/dashboard", params=PERIOD).text
    for table in CHART_TABLES:
        assert f'href="{path_of(table, "csv")}?from=2026-02-01&amp;to=2026-02-28"' in dash
    listed = client.get("/supervise/dashboard/sessions", params={**PERIOD, "room": "room-2"}).text
    assert (
        'href="/supervise/export/sessions.json?from=2026-02-01&amp;to=2026-02-28&amp;room=room-2"'
        in listed
    )
    biller = signed_in(feb, "biller").get("/supervise").text
    assert path_of("billing", "csv") in biller
    assert path_of("concerns", "csv") not in biller
