"""`GET /api/v1/fhir/Bundle`: the caller's practice as a FHIR Bundle, a therapist's own
sessions only, recorded as a read of health data."""

from typing import Any

import orjson

from stepout.adapters.db import audit as sql_audit
from stepout.adapters.fhir.resources import model_class
from tests.web.conftest import Web
from tests.web.test_api_support import call, exit_line, import_records, jsonl, ok, session_line

AS_OF = "2026-02-10T00:00:00+00:00"


def records(web: Web) -> None:
    body = jsonl(
        session_line("s-1", billed_codes=["90837"]),
        exit_line("e-1", "s-1"),
        session_line("s-2", therapist="a-ther2", start="2026-02-03T10:00:00+00:00",
                     end="2026-02-03T10:50:00+00:00"),
    )  # fmt: skip
    ok(import_records(web, body))


def ids(bundle: dict[str, Any], kind: str) -> list[str]:
    return [
        e["resource"]["identifier"][0]["value"]
        for e in bundle.get("entry", [])
        if e["resource"]["resourceType"] == kind
    ]


def fetch(web: Web, username: str, **params: str) -> dict[str, Any]:
    r = call(web, "GET", "/fhir/Bundle", username, params={"as_of": AS_OF, **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    found: dict[str, Any] = orjson.loads(r.content)
    return found


def test_a_supervisor_gets_the_practice_and_the_read_is_audited(web: Web) -> None:
    records(web)
    with web.state.db.engine.connect() as conn:
        before = len(list(sql_audit.entries(conn)))
    bundle = fetch(web, "a-super", release="r4b")
    model_class("r4b", "Bundle").model_validate(bundle)
    assert ids(bundle, "Encounter") == ["s-1", "s-2"]
    with web.state.db.engine.connect() as conn:
        entries = list(sql_audit.entries(conn))[before:]
    (entry,) = entries
    assert (entry.actor, entry.action, entry.practice) == ("a-super", "fhir.export", "pa")
    assert entry.item_count == len(bundle["entry"])


def test_a_therapist_gets_only_their_own_sessions(web: Web) -> None:
    records(web)
    assert ids(fetch(web, "a-ther"), "Encounter") == ["s-1"]
    assert ids(fetch(web, "a-ther2"), "Encounter") == ["s-2"]


def test_another_practice_sees_none_of_it(web: Web) -> None:
    records(web)
    assert "entry" not in fetch(web, "b-super")


def test_dates_filter_and_bad_input_is_a_422(web: Web) -> None:
    records(web)
    only = fetch(web, "a-bill", **{"from": "2026-02-03", "to": "2026-02-03"})
    assert ids(only, "Encounter") == ["s-2"]
    bad = call(
        web, "GET", "/fhir/Bundle", "a-super", params={"from": "2026-02-03", "to": "2026-02-01"}
    )
    assert bad.status_code == 422
    assert call(web, "GET", "/fhir/Bundle", "a-super", params={"release": "r2"}).status_code == 422
    assert call(web, "GET", "/fhir/Bundle").status_code == 401


def post(
    web: Web, body: bytes, username: str = "a-admin", media: str = "application/fhir+json"
) -> Any:
    headers = {"Content-Type": media}
    return call(web, "POST", "/fhir/Bundle", username, content=body, headers=headers)


def test_an_admin_imports_a_bundle_into_their_practice(web: Web) -> None:
    records(web)
    exported = call(web, "GET", "/fhir/Bundle", "a-super", params={"as_of": AS_OF}).content
    with web.state.db.engine.connect() as conn:
        before = len(list(sql_audit.entries(conn)))
    again = ok(post(web, exported))
    assert again == {"release": "r5", "encounters": 2, "created": 0, "unchanged": 2, "skipped": 0}
    new = exported.replace(b'"value":"s-2"', b'"value":"s-9"')
    assert ok(post(web, new))["created"] == 1
    assert ok(call(web, "GET", "/sessions/s-9", "a-super"))["therapist"] == "a-ther2"
    with web.state.db.engine.connect() as conn:
        actions = [(e.action, e.outcome, e.item_count) for e in sql_audit.entries(conn)][before:]
    assert actions[:2] == [("records.import", "ok", 2), ("records.import", "ok", 2)]


def test_a_bundle_of_another_practice_is_rejected_by_entry_and_nothing_is_stored(web: Web) -> None:
    records(web)
    exported = call(web, "GET", "/fhir/Bundle", "a-super", params={"as_of": AS_OF}).content
    renamed = exported.replace(b'"value":"s-1"', b'"value":"s-b1"')
    r = post(web, renamed, "b-admin")
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "import-rejected"
    assert {e["field"] for e in body["errors"]} == {"Encounter.serviceProvider"}
    assert all(isinstance(e["entry"], int) for e in body["errors"])
    assert call(web, "GET", "/sessions/s-b1", "b-super").status_code == 404
    assert call(web, "GET", "/sessions/s-b1", "a-super").status_code == 404


def test_only_admins_import_and_only_fhir_json(web: Web) -> None:
    assert post(web, b"{}", "a-super").status_code == 403
    assert post(web, b"{}", media="text/plain").status_code == 415
    r = post(web, b'{"resourceType": "Patient"}')
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"entry": None, "field": "Bundle.resourceType", "reason": "is not Bundle"}
    ]
