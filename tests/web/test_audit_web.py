"""The audit trail and the logs at the web edge and the command line: one audit record per
request with who, what, which record, from where, through what and the outcome; refusals and
sign-ins recorded; no free text in an audit record or a log line. Every text is synthetic."""

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from stepout.adapters.db import audit as sql_audit
from stepout.cli import app as cli_app
from stepout.domain.audit_trail import AuditEntry
from stepout.logs import JsonFormatter
from stepout.web.links import concern_path
from tests.web.conftest import PASSWORD, Web
from tests.web.pages_support import browser, csrf_of, login, start_session
from tests.web.test_api_support import (
    call,
    come_back,
    end,
    exit_line,
    import_records,
    jsonl,
    ok,
    session_line,
    start,
    step_out,
)
from tests.web.test_pages_concerns import raise_concern

ORIGIN = "testclient"  # the client address Starlette's TestClient reports

# Free text written through every channel that takes some; none may reach the audit trail
# or a log line.
CANARIES = {
    "explanation": "CANARY-EXPLANATION-7f3a: the fire alarm test",
    "reason_note": "CANARY-NOTE-19c2 a neighbour knocked",
    "inform": "CANARY-INFORM-44be told them about the courier",
    "ems_note": "CANARY-EMS-5d01 no ambulance needed",
    "attendant": "CANARY-ATTENDANT-a9e7 the receptionist",
    "amend_note": "CANARY-AMEND-0c3f corrected the reason",
    "amended": "CANARY-AMENDED-6b18 the corrected words",
    "import": "CANARY-IMPORT-ee21 fetched a charger",
    "concern": "CANARY-CONCERN-b7d4 I felt alone in the room",
}


def trail(web: Web) -> list[AuditEntry]:
    with web.state.db.engine.connect() as conn:
        found = list(sql_audit.entries(conn))
        conn.rollback()
    return found


def since(web: Web, before: int) -> list[AuditEntry]:
    return trail(web)[before:]


def test_a_declared_exit_writes_exactly_its_audit_record(web_any: Web) -> None:
    web = web_any
    session = start(web)
    before = len(trail(web))
    x = step_out(web, session["id"])
    (entry,) = since(web, before)
    assert entry.actor == "a-ther"
    assert entry.practice == "pa"
    assert entry.action == "exit.declare"
    assert entry.target == x["id"]
    assert entry.outcome == "ok"
    assert entry.origin == ORIGIN
    assert entry.channel == "api"
    with web.state.db.engine.connect() as conn:
        assert sql_audit.verify(conn, web.state.keys.chain_key).ok
        conn.rollback()


def test_reading_an_exit_or_a_day_writes_a_read_record(web: Web) -> None:
    x = step_out(web, start(web)["id"])
    before = len(trail(web))
    ok(call(web, "GET", f"/exits/{x['id']}", "a-super"))
    days = ok(call(web, "GET", "/sessions?date=2026-01-05", "a-super"))
    read, listed = since(web, before)
    assert (read.actor, read.action, read.target, read.outcome) == (
        "a-super",
        "exit.read",
        x["id"],
        "ok",
    )
    assert (listed.action, listed.target, listed.item_count) == (
        "session.list",
        "2026-01-05",
        len(days),
    )


def test_a_refused_cross_practice_read_is_recorded_as_refused(web: Web) -> None:
    x = step_out(web, start(web)["id"])
    before = len(trail(web))
    assert call(web, "GET", f"/exits/{x['id']}", "b-super").status_code == 404
    assert call(web, "POST", f"/exits/{x['id']}/sign", "b-ther").status_code == 404
    assert call(web, "GET", f"/exits/{x['id']}", "a-bill").status_code == 200
    assert call(web, "POST", "/records", "a-ther", content=b"").status_code == 403
    assert call(web, "GET", f"/exits/{x['id']}").status_code == 401
    read, write, allowed, forbidden, anonymous = since(web, before)
    assert (read.actor, read.practice, read.action, read.target, read.outcome) == (
        "b-super",
        "pb",
        "access.refused",
        x["id"],
        "refused",
    )
    assert (write.actor, write.action, write.target, write.outcome) == (
        "b-ther",
        "exit.sign",
        x["id"],
        "refused",
    )
    assert allowed.outcome == "ok"
    assert (forbidden.actor, forbidden.action, forbidden.outcome) == (
        "a-ther",
        "access.refused",
        "refused",
    )
    assert (anonymous.actor, anonymous.practice, anonymous.outcome) == (
        "anonymous",
        None,
        "refused",
    )


def test_a_protocol_refusal_is_recorded_as_failed(web: Web) -> None:
    x = step_out(web, start(web)["id"])
    come_back(web, x["id"])
    before = len(trail(web))
    r = call(web, "POST", f"/exits/{x['id']}/return", "a-ther", json={"checked_in": True})
    assert r.status_code == 409
    (entry,) = since(web, before)
    assert (entry.action, entry.target, entry.outcome) == ("exit.return", x["id"], "failed")


def _sign_in_form(client: Any, username: str, password: str) -> int:
    form = client.get("/login")
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    return int(r.status_code)


def test_sign_ins_failed_and_succeeded_are_recorded(web: Web) -> None:
    c = browser(web)
    before = len(trail(web))
    assert _sign_in_form(c, "a-ther", "not-the-password-at-all") == 401
    assert _sign_in_form(c, "nobody-here", PASSWORD) == 401
    csrf = login(c, "a-ther")
    c.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    entries = since(web, before)
    actions = [(e.action, e.actor, e.practice, e.outcome, e.channel) for e in entries]
    assert actions[:2] == [
        ("login.failed", "a-ther", "pa", "failed", "page"),
        ("login.failed", "anonymous", None, "failed", "page"),
    ]
    assert ("login.password_accepted", "a-ther", "pa", "ok", "page") in actions
    assert ("login.succeeded", "a-ther", "pa", "ok", "page") in actions
    assert actions[-1] == ("logout", "a-ther", "pa", "ok", "page")
    assert all(e.target is None for e in entries if e.action.startswith(("login", "logout")))


def test_a_page_without_a_session_and_a_room_display_are_recorded(web: Web) -> None:
    before = len(trail(web))
    r = browser(web).get("/console", follow_redirects=False)
    assert r.status_code == 303
    token = web.a.room_tokens["room-1"]
    ok(web.client.get("/api/v1/rooms/room-1/display", headers={"Authorization": f"Bearer {token}"}))
    refused, display = since(web, before)
    assert (refused.actor, refused.action, refused.outcome) == (
        "anonymous",
        "access.refused",
        "refused",
    )
    assert (display.actor, display.action, display.target, display.channel) == (
        "room:pa/room-1",
        "display.read",
        "room-1",
        "display",
    )


def _write_every_free_text(web: Web) -> None:
    """Every API command and page that takes free text, with a canary in each."""
    s = start(web)
    x = step_out(
        web,
        s["id"],
        reason="other",
        reason_note=CANARIES["reason_note"],
        explanation=CANARIES["explanation"],
        client_informed=False,
    )
    xid = x["id"]
    for path, body in (
        ("ems", {"ems": "not_needed", "note": CANARIES["ems_note"]}),
        ("attendant", {"client_attended_by": CANARIES["attendant"]}),
    ):
        ok(call(web, "POST", f"/exits/{xid}/{path}", "a-ther", json=body))
    come_back(web, xid)
    told = {"client_informed": "after_return", "explanation": CANARIES["inform"]}
    ok(call(web, "POST", f"/exits/{xid}/inform", "a-ther", json=told))
    end(web, s["id"])
    amend = {"changes": {"explanation": CANARIES["amended"]}, "note": CANARIES["amend_note"]}
    ok(call(web, "POST", f"/exits/{xid}/amend", "a-super", json=amend))
    body = jsonl(
        session_line("s-canary"),
        exit_line("e-canary", "s-canary", explanation=CANARIES["import"]),
    )
    ok(import_records(web, body))
    c = browser(web)
    sid = start_session(c, login(c, "a-ther2"))
    raise_concern(browser(web), concern_path(web.state.keys.link_key, sid), CANARIES["concern"])


def test_no_audit_record_and_no_log_line_holds_free_text(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _write_every_free_text(web)
    entries = trail(web)
    stored = "\n".join(repr(e) for e in entries)
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    logged = caplog.text + "\n".join(lines)
    for canary in CANARIES.values():
        marker = canary.split()[0]
        assert marker not in stored
        assert marker not in logged
    actions = {e.action for e in entries}
    assert {"exit.inform", "exit.ems", "exit.attendant", "exit.amend", "records.import"} <= actions
    assert "concern.raise" in actions
    assert any(e.action == "records.import" and e.item_count == 2 for e in entries)


def test_a_request_logs_one_json_line_with_its_ids(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    x = step_out(web, start(web)["id"])
    caplog.set_level(logging.INFO, logger="stepout.request")
    caplog.clear()
    r = call(web, "GET", f"/exits/{x['id']}?because=free+text+here", "a-super")
    assert r.status_code == 200
    (record,) = [r for r in caplog.records if r.name == "stepout.request"]
    line = orjson.loads(JsonFormatter().format(record))
    assert line["event"] == "request"
    assert line["level"] == "info"
    assert line["route"] == "/api/v1/exits/{exit_id}"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert line["user"] == "a-super"
    assert line["practice"] == "pa"
    assert line["request_id"] == r.headers["x-request-id"]
    assert isinstance(line["duration_ms"], float)
    assert {"time", "logger"} <= set(line)
    text = orjson.dumps(line).decode()
    assert x["id"] not in text  # the template, not the path
    assert "free" not in text  # never the query string


def test_the_cli_export_and_reports_write_audit_records(
    web: Web, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_out(web, start(web)["id"])
    monkeypatch.setenv("STEPOUT_DATABASE_URL", web.settings.database_url)
    runner = CliRunner()
    before = len(trail(web))
    out = tmp_path / "all.jsonl"
    for args in (["export", "--out", str(out)], ["billing", "--format", "json"]):
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 0, result.output
    export, billing = since(web, before)
    assert export.action == "records.export"
    assert export.channel == "cli"
    assert export.origin == "cli"
    assert export.actor.startswith("cli:")
    assert export.outcome == "ok"
    assert (billing.action, billing.target) == ("billing.read", "list")
