"""`GET /api/v1/findings`: the audit of the caller's practice with the filters of
`stepout audit`, a therapist's own findings only, paginated."""

from typing import Any

from stepout.domain.instants import parse_instant
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit
from tests.web.conftest import Web
from tests.web.test_api_support import (
    call,
    exit_line,
    fields,
    import_records,
    jsonl,
    ok,
    session_line,
)


def _records(web: Web) -> None:
    """Practice pa: s-1 (a-ther, 2 Feb) with an exit for reason `other`, no safeguards, no
    check-in, unsigned; s-2 (a-ther2, 5 Feb) with a technical exit of 10 minutes, signed.
    Practice pb: s-b, with an exit as bad as s-1's."""
    pa = jsonl(
        session_line("s-1"),
        exit_line("e-1", "s-1", reason="other", safeguards=[], checked_in=False),
        session_line(
            "s-2",
            therapist="a-ther2",
            start="2026-02-05T10:00:00+00:00",
            end="2026-02-05T10:55:00+00:00",
        ),
        exit_line(
            "e-2",
            "s-2",
            left_at="2026-02-05T10:10:00+00:00",
            returned_at="2026-02-05T10:20:00+00:00",
            signed_at="2026-02-05T12:00:00+00:00",
        ),
    )
    ok(import_records(web, pa))
    pb = jsonl(
        session_line("s-b", practice="pb", therapist="b-ther"),
        exit_line("e-b", "s-b", reason="other", safeguards=[], checked_in=False),
    )
    ok(import_records(web, pb, "b-admin"))


def findings(web: Web, username: str = "a-super", **params: Any) -> list[dict[str, Any]]:
    return ok(call(web, "GET", "/findings", username, params=params))


def rules(found: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
    return {(f["rule"], f["exit"] or f["session"]) for f in found}


def test_the_practices_findings_as_the_audit_reports_them(web_any: Web) -> None:
    _records(web_any)
    found = findings(web_any, as_of="2026-03-01T00:00:00+00:00")
    assert rules(found) == {
        ("reason-not-exceptional", "e-1"),
        ("confidentiality-incomplete", "e-1"),
        ("no-check-in", "e-1"),
        ("documentation-late", "e-1"),
        ("absence-too-long", "e-2"),
    }
    with web_any.state.db.uow(read_only=True) as uow:
        audit = run_audit(
            uow.records,
            Selection(practice="pa"),
            web_any.state.policy,
            parse_instant("2026-03-01T00:00:00+00:00"),
        )
    # The findings of `stepout audit --format json`, each with its key and review state.
    assert [{k: v for k, v in f.items() if k not in ("key", "review")} for f in found] == [
        f.as_dict() for f in audit
    ]
    assert all(f["review"]["state"] == "open" for f in found)
    assert set(found[0]) == {
        "key",
        "review",
        "rule",
        "severity",
        "session",
        "exit",
        "therapist",
        "message",
        "policy_version",
    }
    assert {f["therapist"] for f in found} == {"a-ther", "a-ther2"}
    assert all(f["session"] != "s-b" for f in found)
    assert rules(findings(web_any, "b-super")) >= {("reason-not-exceptional", "e-b")}


def test_filters_by_rule_severity_therapist_and_dates(web: Web) -> None:
    _records(web)
    one = findings(web, rule="no-check-in")
    assert rules(one) == {("no-check-in", "e-1")}
    two = findings(web, rule=["no-check-in", "absence-too-long"])
    assert rules(two) == {("no-check-in", "e-1"), ("absence-too-long", "e-2")}
    violations = findings(web, severity="violation")
    assert {f["severity"] for f in violations} == {"violation"}
    assert rules(violations) == {
        ("reason-not-exceptional", "e-1"),
        ("confidentiality-incomplete", "e-1"),
    }
    assert {f["therapist"] for f in findings(web, therapist="a-ther2")} == {"a-ther2"}
    assert {f["session"] for f in findings(web, **{"from": "2026-02-03"})} == {"s-2"}
    assert {f["session"] for f in findings(web, to="2026-02-02")} == {"s-1"}
    assert findings(web, **{"from": "2026-02-03", "to": "2026-02-04"}) == []


def test_as_of_judges_the_deadlines_at_that_time(web: Web) -> None:
    _records(web)
    early = findings(web, as_of="2026-02-02T12:00:00+00:00", rule="documentation-late")
    assert early == []
    late = findings(web, as_of="2026-02-04T12:00:00+01:00", rule="documentation-late")
    assert rules(late) == {("documentation-late", "e-1")}


def test_a_therapist_gets_only_their_own_findings(web: Web) -> None:
    _records(web)
    assert {f["therapist"] for f in findings(web, "a-ther")} == {"a-ther"}
    assert {f["therapist"] for f in findings(web, "a-ther", therapist="a-ther")} == {"a-ther"}
    r = call(web, "GET", "/findings", "a-ther", params={"therapist": "a-ther2"})
    assert r.status_code == 403
    assert {f["therapist"] for f in findings(web, "a-ther2")} == {"a-ther2"}


def test_every_staff_role_reads_findings(web: Web) -> None:
    _records(web)
    every = findings(web, "a-super")
    assert findings(web, "a-admin") == every
    assert findings(web, "a-bill") == every


def test_pages_follow_the_link_header(web: Web) -> None:
    _records(web)
    every = findings(web)
    assert len(every) >= 4
    first = call(web, "GET", "/findings", "a-super", params={"limit": 2})
    assert first.headers["x-total-count"] == str(len(every))
    assert first.json() == every[:2]
    following = first.links["next"]["url"]
    assert "offset=2" in following
    second = web.client.get(following, headers=web.a.auth("a-super"))
    assert second.json() == every[2:4]
    last = call(web, "GET", "/findings", "a-super", params={"limit": 2, "offset": len(every) - 1})
    assert last.json() == every[-1:]
    assert "link" not in last.headers


BAD_FILTERS = [
    ({"rule": "be-nice"}, "rule"),
    ({"severity": "mild"}, "severity"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-02-05", "to": "2026-02-01"}, "to"),
    ({"as_of": "2026-02-02T12:00:00"}, "as_of"),
    ({"as_of": "soon"}, "as_of"),
    ({"limit": 0}, "limit"),
    ({"limit": 100_001}, "limit"),
    ({"offset": -1}, "offset"),
]


def test_bad_filters_name_the_field(web: Web) -> None:
    for params, field in BAD_FILTERS:
        r = call(web, "GET", "/findings", "a-super", params=params)
        assert fields(r) == [field], params
        assert r.json()["errors"][0]["reason"]
