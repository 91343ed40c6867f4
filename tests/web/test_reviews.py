"""A finding's review on the web: `POST /api/v1/findings/{key}/acknowledge|assign|resolve`,
the review state in `GET /api/v1/findings`, and the queue's controls on the overview page.
Every record and note here is synthetic."""

from typing import Any

from sqlalchemy import text

from stepout.adapters.db import tenancy
from tests.web.conftest import Web
from tests.web.pages_support import browser, csrf_of, login
from tests.web.test_api_support import call, exit_line, import_records, jsonl, ok, session_line

NOTE = "FAKE-CANARY-REVIEW synthetic note"
DAY = "2026-02-27"  # within the overview's last 7 days of the fake clock (2 March)


def _records(web: Web) -> None:
    """pa: s-1 (a-ther) with an exit for reason `other`, no safeguards, no check-in;
    pb: s-b likewise."""
    start, end = f"{DAY}T10:00:00+00:00", f"{DAY}T10:55:00+00:00"
    left, back = f"{DAY}T10:20:00+00:00", f"{DAY}T10:23:00+00:00"
    ok(
        import_records(
            web,
            jsonl(
                session_line("s-1", start=start, end=end),
                exit_line(
                    "e-1", "s-1", left, back, reason="other", safeguards=[], checked_in=False
                ),
            ),
        )
    )
    ok(
        import_records(
            web,
            jsonl(
                session_line("s-b", practice="pb", therapist="b-ther", start=start, end=end),
                exit_line(
                    "e-b", "s-b", left, back, reason="other", safeguards=[], checked_in=False
                ),
            ),
            "b-admin",
        )
    )


def findings(web: Web, username: str = "a-super") -> list[dict[str, Any]]:
    return ok(call(web, "GET", "/findings", username))


def one(web: Web, rule: str, username: str = "a-super") -> dict[str, Any]:
    return next(f for f in findings(web, username) if f["rule"] == rule)


def step(web: Web, key: str, what: str, username: str = "a-super", **body: Any) -> Any:
    return call(web, "POST", f"/findings/{key}/{what}", username, json=body)


def test_acknowledge_assign_resolve_over_the_api(web_clocked: Web) -> None:
    web = web_clocked
    _records(web)
    f = one(web, "confidentiality-incomplete")
    assert f["review"]["state"] == "open"
    key = f["key"]
    assert key.startswith("f_")

    r = ok(step(web, key, "acknowledge", note=NOTE))
    assert r["state"] == "acknowledged"
    assert r["acknowledged_note"] == NOTE
    assert r["acknowledged_by"] == "a-super"
    r = ok(step(web, key, "assign", assignee="a-ther2"))
    assert r["assignee"] == "a-ther2"
    r = ok(step(web, key, "resolve", note="Fixed with the therapist", username="a-admin"))
    assert r["state"] == "resolved"

    # The audit recomputes the finding and finds its review.
    f = one(web, "confidentiality-incomplete")
    assert f["key"] == key
    assert f["review"]["state"] == "resolved"
    assert f["review"]["acknowledged_note"] == NOTE
    assert f["review"]["assignee"] == "a-ther2"
    # Other findings stay open.
    assert one(web, "no-check-in")["review"]["state"] == "open"

    # The notes are sealed in storage; the audit trail names the key, never the text.
    with tenancy.scope(tenancy.ALL), web.state.db.engine.connect() as conn:
        notes = conn.execute(text("SELECT acknowledged_note FROM finding_reviews")).scalars()
        assert all(n.startswith("so1.") for n in notes)
        data = conn.execute(text("SELECT data FROM events WHERE kind LIKE 'finding.%'")).scalars()
        assert all("FAKE-CANARY" not in d for d in data)
        trail = conn.execute(
            text("SELECT action, target, outcome FROM audit_log WHERE action LIKE 'finding.%'")
        ).all()
    assert [tuple(t) for t in trail] == [
        ("finding.acknowledge", key, "ok"),
        ("finding.assign", key, "ok"),
        ("finding.resolve", key, "ok"),
    ]


def test_the_lifecycle_refuses_steps_out_of_order(web_clocked: Web) -> None:
    web = web_clocked
    _records(web)
    key = one(web, "no-check-in")["key"]
    assert step(web, key, "resolve", note="too soon").status_code == 409
    assert step(web, key, "acknowledge", note="  ").status_code == 422
    ok(step(web, key, "acknowledge", note=NOTE))
    assert step(web, key, "acknowledge", note=NOTE).status_code == 409
    assert step(web, key, "assign", assignee="a-super").status_code == 422  # not a therapist
    assert step(web, key, "assign", assignee="b-ther").status_code == 422  # another practice
    ok(step(web, key, "resolve", note=NOTE))
    assert step(web, key, "assign", assignee="a-ther").status_code == 409
    with tenancy.scope(tenancy.ALL), web.state.db.engine.connect() as conn:
        failed = conn.execute(
            text(
                "SELECT COUNT(*) FROM audit_log "
                "WHERE action LIKE 'finding.%' AND outcome = 'failed'"
            )
        ).scalar_one()
    assert failed == 6


def test_unknown_keys_and_other_practices_findings_are_not_found(web_clocked: Web) -> None:
    web = web_clocked
    _records(web)
    theirs = one(web, "no-check-in", "b-super")["key"]
    assert step(web, theirs, "acknowledge", note=NOTE).status_code == 404
    assert step(web, "f_" + "0" * 32, "acknowledge", note=NOTE).status_code == 404
    assert step(web, "not-a-key", "acknowledge", note=NOTE).status_code == 404
    # Once B reviews it, A still cannot reach it.
    ok(step(web, theirs, "acknowledge", "b-super", note=NOTE))
    assert step(web, theirs, "resolve", note=NOTE).status_code == 404
    assert one(web, "no-check-in", "b-super")["review"]["state"] == "acknowledged"


def test_only_supervisors_and_admins_review(web_clocked: Web) -> None:
    web = web_clocked
    _records(web)
    key = one(web, "no-check-in")["key"]
    for username in ("a-ther", "a-bill"):
        assert step(web, key, "acknowledge", username, note=NOTE).status_code == 403


def test_a_biller_sees_the_state_but_not_the_notes(web_clocked: Web) -> None:
    web = web_clocked
    _records(web)
    key = one(web, "no-check-in")["key"]
    ok(step(web, key, "acknowledge", note=NOTE))
    billed = one(web, "no-check-in", "a-bill")["review"]
    assert (billed["state"], billed["acknowledged_note"]) == ("acknowledged", None)
    assert one(web, "no-check-in", "a-ther")["review"]["acknowledged_note"] == NOTE
    assert one(web, "no-check-in", "a-admin")["review"]["acknowledged_note"] == NOTE
    client = browser(web)
    login(client, "a-bill")
    page = client.get("/supervise")
    assert page.status_code == 200
    assert f'id="finding-{key}"' in page.text
    assert NOTE not in page.text


def test_a_therapist_sees_their_findings_and_those_assigned_to_them(web_clocked: Web) -> None:
    web = web_clocked
    _records(web)
    key = one(web, "no-check-in")["key"]  # a finding about a-ther's session
    assert all(f["therapist"] == "a-ther" for f in findings(web, "a-ther"))
    assert findings(web, "a-ther2") == []
    ok(step(web, key, "assign", assignee="a-ther2"))
    theirs = findings(web, "a-ther2")
    assert [(f["key"], f["review"]["assignee"]) for f in theirs] == [(key, "a-ther2")]
    mine = {f["key"]: f["review"]["assignee"] for f in findings(web, "a-ther")}
    assert mine[key] == "a-ther2"


def test_the_overview_acknowledges_assigns_and_resolves(web_clocked: Web) -> None:
    web = web_clocked
    _records(web)
    key = one(web, "no-check-in")["key"]
    client = browser(web)
    csrf = login(client, "a-super")
    page = client.get("/supervise")
    assert page.status_code == 200
    assert f'id="finding-{key}"' in page.text
    assert f'hx-post="/supervise/findings/{key}/acknowledge"' in page.text
    assert "Findings to review" in page.text

    # A first step that fails shows why, in the card (htmx swaps it).
    r = client.post(
        f"/supervise/findings/{key}/acknowledge",
        data={"note": " ", "csrf": csrf},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200
    assert r.text.lstrip().startswith("<li")
    assert 'role="alert"' in r.text
    # Without the CSRF token: refused.
    r = client.post(f"/supervise/findings/{key}/acknowledge", data={"note": NOTE})
    assert r.status_code == 403

    headers = {"HX-Request": "true"}
    r = client.post(
        f"/supervise/findings/{key}/acknowledge",
        data={"note": NOTE, "csrf": csrf, "from": "2026-02-23"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert NOTE in r.text
    assert f'hx-post="/supervise/findings/{key}/resolve"' in r.text
    r = client.post(
        f"/supervise/findings/{key}/assign",
        data={"assignee": "a-ther2", "csrf": csrf},
        headers=headers,
    )
    assert "assigned to a-ther2" in r.text
    # A step refused by the lifecycle shows why, in the card.
    r = client.post(
        f"/supervise/findings/{key}/acknowledge",
        data={"note": NOTE, "csrf": csrf},
        headers=headers,
    )
    assert 'role="alert"' in r.text
    # Without htmx: back to the overview.
    r = client.post(
        f"/supervise/findings/{key}/resolve",
        data={"note": "Done", "csrf": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get("/supervise")
    assert "Resolved" in page.text
    assert one(web, "no-check-in")["review"]["state"] == "resolved"
    # Another practice's finding: not found.
    theirs = one(web, "no-check-in", "b-super")["key"]
    r = client.post(f"/supervise/findings/{theirs}/acknowledge", data={"note": NOTE, "csrf": csrf})
    assert r.status_code == 404


def test_a_therapist_sees_the_queue_without_controls(web_clocked: Web) -> None:
    web = web_clocked
    _records(web)
    client = browser(web)
    login(client, "a-ther2")
    page = client.get("/supervise")
    assert page.status_code == 200
    assert "/supervise/findings/" not in page.text
    csrf = csrf_of(page.text)
    key = one(web, "no-check-in")["key"]
    r = client.post(f"/supervise/findings/{key}/acknowledge", data={"note": NOTE, "csrf": csrf})
    assert r.status_code == 403
