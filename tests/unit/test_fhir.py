"""The FHIR Bundle out of an in-memory store: what each resource says, that each one parses
with its `fhir.resources` model, and the golden files that pin the whole output.

Regenerate the golden files after a deliberate change: `STEPOUT_REGENERATE_GOLDEN=1
.venv/bin/python -m pytest tests/unit/test_fhir.py`, then read the diff.
"""

import io
import os
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from stepout.adapters.fhir import codes
from stepout.adapters.fhir.codes import Release
from stepout.adapters.fhir.resources import model_class, presence
from stepout.adapters.memory import MemoryState, MemoryUnitOfWork
from stepout.domain.instants import MICROS_PER_MINUTE, parse_instant
from stepout.policy.model import load_policy, policy_from_toml
from stepout.services.fhir import export_fhir
from stepout.services.importing import import_records
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit

GOLDEN = Path(__file__).parent.parent / "golden" / "fhir"
RECORDS = GOLDEN / "records.jsonl"
AS_OF = parse_instant("2026-11-10T00:00:00+00:00")
REGENERATE = os.environ.get("STEPOUT_REGENERATE_GOLDEN") == "1"
M = MICROS_PER_MINUTE


def store(lines: list[bytes] | None = None) -> MemoryState:
    state = MemoryState()
    with MemoryUnitOfWork(state) as uow:
        import_records(uow, lines if lines is not None else RECORDS.read_bytes().splitlines())
    return state


def export(
    state: MemoryState,
    release: Release = "r5",
    selection: Selection | None = None,
    policy_toml: str | None = None,
) -> bytes:
    out = io.BytesIO()
    policy = load_policy() if policy_toml is None else policy_from_toml(policy_toml)
    with MemoryUnitOfWork(state) as uow:
        export_fhir(uow.records, selection or Selection(), policy, AS_OF, release, out)
    return out.getvalue()


def resources(data: bytes) -> list[dict[str, Any]]:
    return [e["resource"] for e in orjson.loads(data).get("entry", [])]


def of_type(data: bytes, kind: str) -> list[dict[str, Any]]:
    return [r for r in resources(data) if r["resourceType"] == kind]


def identifier(resource: dict[str, Any]) -> str:
    found = resource["identifier"]
    value: str = (found if isinstance(found, dict) else found[0])["value"]
    return value


@pytest.fixture(scope="module")
def golden_state() -> MemoryState:
    return store()


@pytest.mark.parametrize("release", codes.RELEASES)
def test_the_bundle_matches_its_golden_file(golden_state: MemoryState, release: Release) -> None:
    produced = export(golden_state, release)
    path = GOLDEN / release / "bundle.json"
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(produced)
    assert produced == path.read_bytes(), f"regenerate with STEPOUT_REGENERATE_GOLDEN=1: {path}"


@pytest.mark.parametrize("release", codes.RELEASES)
def test_the_whole_bundle_and_every_resource_parse_with_the_models(
    golden_state: MemoryState, release: Release
) -> None:
    data = export(golden_state, release)
    bundle = model_class(release, "Bundle").model_validate_json(data)
    assert bundle.type == "collection"
    for entry in orjson.loads(data)["entry"]:
        resource = entry["resource"]
        parsed = model_class(release, resource["resourceType"]).model_validate(resource)
        assert parsed.id == resource["id"]
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"


def test_the_same_records_give_the_same_bytes_and_the_ids_are_unique(
    golden_state: MemoryState,
) -> None:
    first, again = export(golden_state), export(store())
    assert first == again
    urls = [e["fullUrl"] for e in orjson.loads(first)["entry"]]
    assert len(urls) == len(set(urls))


def test_every_reference_points_to_an_entry_of_the_bundle(golden_state: MemoryState) -> None:
    data = export(golden_state)
    urls = {e["fullUrl"] for e in orjson.loads(data)["entry"]}

    def references(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["reference"]] if isinstance(node.get("reference"), str) else []
            return own + [r for v in node.values() for r in references(v)]
        if isinstance(node, list):
            return [r for v in node for r in references(v)]
        return []

    found = references(resources(data))
    assert found
    assert set(found) <= urls


def test_one_encounter_per_session_with_one_participant_period_per_presence(
    golden_state: MemoryState,
) -> None:
    encounters = {identifier(e): e for e in of_type(export(golden_state), "Encounter")}
    assert sorted(encounters) == ["s1", "s2", "s3", "s4", "s5"]
    s2 = encounters["s2"]
    # 10:00-11:00 minus 10:10-10:25 and 10:40-10:43 (times at -05:00).
    assert [p["period"] for p in s2["participant"]] == [
        {"start": "2026-11-03T15:00:00+00:00", "end": "2026-11-03T15:10:00+00:00"},
        {"start": "2026-11-03T15:25:00+00:00", "end": "2026-11-03T15:40:00+00:00"},
        {"start": "2026-11-03T15:43:00+00:00", "end": "2026-11-03T16:00:00+00:00"},
    ]
    assert s2["length"] == {
        "value": 42,
        "unit": "min",
        "system": "http://unitsofmeasure.org",
        "code": "min",
    }
    assert s2["class"] == [{"coding": [{"system": codes.ACT_CODE, "code": "VR"}]}]
    assert [t["coding"][0]["code"] for t in s2["type"]] == ["90834", "90785"]
    assert s2["status"] == "completed"
    # s4's exit never returned: it lasts to the session's end.
    assert [p["period"]["end"] for p in encounters["s4"]["participant"]] == [
        "2026-11-04T18:40:00+00:00"
    ]
    assert encounters["s4"]["length"]["value"] == 40
    assert "type" not in encounters["s4"]
    assert encounters["s3"]["class"][0]["coding"][0]["code"] == "AMB"


def test_r4b_encounters_use_that_releases_elements(golden_state: MemoryState) -> None:
    (s1,) = [e for e in of_type(export(golden_state, "r4b"), "Encounter") if identifier(e) == "s1"]
    assert s1["status"] == "finished"
    assert s1["class"] == {"system": codes.ACT_CODE, "code": "AMB"}
    assert s1["period"] == {
        "start": "2026-11-03T14:00:00+00:00",
        "end": "2026-11-03T14:55:00+00:00",
    }
    assert all("individual" in p for p in s1["participant"])
    assert s1["length"]["value"] == 45


def test_what_the_client_was_told_is_a_communication(golden_state: MemoryState) -> None:
    for release, words in (("r5", "contentCodeableConcept"), ("r4b", "contentString")):
        told = {identifier(c): c for c in of_type(export(golden_state, release), "Communication")}
        assert sorted(told) == ["e1", "e2", "e5"]  # e3 and e4: the client was not informed
        e1, e2 = told["e1"], told["e2"]
        assert e1["category"][0]["coding"][0]["code"] == "before_leaving"
        assert e1["sent"] == "2026-11-03T14:20:00+00:00"  # on leaving
        assert e2["category"][0]["coding"][0]["code"] == "after_return"
        assert e2["sent"] == "2026-11-03T15:25:00+00:00"  # on return
        text = e1["payload"][0][words]
        said = text["text"] if release == "r5" else text
        assert said.startswith("The video link dropped")


def test_each_health_emergency_is_an_adverse_event_with_the_ems_decision(
    golden_state: MemoryState,
) -> None:
    events = {identifier(a): a for a in of_type(export(golden_state), "AdverseEvent")}
    assert sorted(events) == ["e2", "e5"]
    ems = {
        k: a["mitigatingAction"][0]["itemCodeableConcept"]["coding"][0] for k, a in events.items()
    }
    assert ems["e2"] == {"system": codes.EMS_DECISION, "code": "called"}
    assert ems["e5"]["code"] == "not_needed"
    assert events["e2"]["occurrencePeriod"] == {
        "start": "2026-11-03T15:10:00+00:00",
        "end": "2026-11-03T15:25:00+00:00",
    }
    r4b = {identifier(a): a for a in of_type(export(golden_state, "r4b"), "AdverseEvent")}
    assert r4b["e2"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "called"


def test_each_finding_is_a_detected_issue_naming_rule_severity_policy_and_exit(
    golden_state: MemoryState,
) -> None:
    data = export(golden_state)
    issues = of_type(data, "DetectedIssue")
    encounter_of = {e["id"]: identifier(e) for e in of_type(data, "Encounter")}

    def summary(issue: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
        implicated = issue.get("implicated", [])
        session = [encounter_of[r["reference"].removeprefix("urn:uuid:")] for r in implicated
                   if "reference" in r]  # fmt: skip
        exits = [r["identifier"]["value"] for r in implicated if "identifier" in r]
        return (
            issue["code"]["coding"][0]["code"],
            issue["severity"],
            session[0] if session else None,
            exits[0] if exits else None,
        )

    found = [summary(i) for i in issues]
    assert ("billed-code-unsupported", "high", "s1", None) in found
    assert ("undeclared-exit", "high", "s2", "e3") in found
    assert ("client-not-informed", "high", "s4", "e4") in found
    assert ("concern-unacknowledged", "moderate", "s4", None) in found
    assert all(i["extension"][0]["valueString"] == load_policy().version for i in issues)
    assert {i["identifiedDateTime"] for i in issues} == {"2026-11-10T00:00:00+00:00"}
    # Nothing about s3 (a clean session).
    assert all(s != "s3" for _, _, s, _ in found)


def test_the_patient_is_the_client_id_and_nothing_else(golden_state: MemoryState) -> None:
    patients = of_type(export(golden_state), "Patient")
    assert sorted(identifier(p) for p in patients) == ["c-0001", "c-0002", "c-0003", "c-0100"]
    assert all(set(p) == {"resourceType", "id", "identifier"} for p in patients)


def test_the_concerns_text_is_not_in_the_bundle(golden_state: MemoryState) -> None:
    assert b"nobody told me why" not in export(golden_state)


def test_filters_by_practice_and_dates(golden_state: MemoryState) -> None:
    only_p2 = export(golden_state, selection=Selection(practice="p2"))
    assert [identifier(e) for e in of_type(only_p2, "Encounter")] == ["s5"]
    assert [identifier(o) for o in of_type(only_p2, "Organization")] == ["p2"]
    day = date(2026, 11, 4)
    nov4 = export(golden_state, selection=Selection(date_from=day, date_to=day))
    assert [identifier(e) for e in of_type(nov4, "Encounter")] == ["s3", "s4"]


def test_an_empty_selection_is_a_bundle_with_no_entry(golden_state: MemoryState) -> None:
    data = export(golden_state, selection=Selection(practice="nobody"))
    assert orjson.loads(data) == {"resourceType": "Bundle", "type": "collection"}
    model_class("r5", "Bundle").model_validate_json(data)


def test_a_high_exit_rate_implicates_the_practitioner() -> None:
    lines = []
    for n in range(4):
        start, end = f"2026-11-0{n + 1}T09:00:00+00:00", f"2026-11-0{n + 1}T09:50:00+00:00"
        lines.append(orjson.dumps({
            "kind": "session", "id": f"s{n}", "practice": "p1", "therapist": "t1",
            "client": f"c{n}", "room": "r1", "modality": "in_person", "start": start, "end": end,
        }))  # fmt: skip
    lines.append(orjson.dumps({
        "kind": "exit", "id": "e0", "session": "s0", "source": "declared", "reason": "technical",
        "left_at": "2026-11-01T09:10:00+00:00", "returned_at": "2026-11-01T09:12:00+00:00",
    }))  # fmt: skip
    policy = '[policy]\nversion = "test-1"\n[rules.exit-rate-high]\nmin_sessions = 4\n'
    data = export(store(lines), policy_toml=policy)
    (issue,) = [
        i
        for i in of_type(data, "DetectedIssue")
        if i["code"]["coding"][0]["code"] == "exit-rate-high"
    ]
    (practitioner,) = of_type(data, "Practitioner")
    assert issue["implicated"] == [{"reference": f"urn:uuid:{practitioner['id']}"}]
    assert "subject" not in issue
    assert resources(data)[-1] == issue  # the therapists' findings come last


def test_presence_is_the_session_minus_the_merged_exits() -> None:
    start, end = 0, 60 * M
    assert presence(start, end, []) == [(0, 60 * M)]
    assert presence(start, end, [(10 * M, 20 * M), (15 * M, 25 * M)]) == [
        (0, 10 * M),
        (25 * M, 60 * M),
    ]
    assert presence(start, end, [(-5 * M, 5 * M), (50 * M, None)]) == [(5 * M, 50 * M)]
    assert presence(start, end, [(0, None)]) == []
    assert presence(start, end, [(30 * M, 20 * M)]) == [(0, 60 * M)]  # reversed: nothing


def test_a_short_session_with_no_exit_still_has_its_billing_finding() -> None:
    line = orjson.dumps({
        "kind": "session", "id": "s-short", "practice": "p1", "therapist": "t1", "client": "c1",
        "room": "r1", "modality": "in_person", "start": "2026-11-03T09:00:00+00:00",
        "end": "2026-11-03T09:20:00+00:00", "billed_codes": ["90837"],
    })  # fmt: skip
    (issue,) = of_type(export(store([line])), "DetectedIssue")
    assert issue["code"]["coding"][0]["code"] == "billed-code-unsupported"


def test_the_detected_issues_are_the_audits_findings_in_its_order(
    golden_state: MemoryState,
) -> None:
    data = export(golden_state)
    session_of = {e["id"]: identifier(e) for e in of_type(data, "Encounter")}

    def named(issue: dict[str, Any]) -> tuple[str, str | None, str | None, str]:
        implicated = issue.get("implicated", [])
        refs = [r["reference"].removeprefix("urn:uuid:") for r in implicated if "reference" in r]
        exits = [r["identifier"]["value"] for r in implicated if "identifier" in r]
        session = session_of.get(refs[0]) if refs else None
        return (issue["code"]["coding"][0]["code"], session, exits[0] if exits else None,
                issue["detail"])  # fmt: skip

    with MemoryUnitOfWork(golden_state) as uow:
        findings = run_audit(uow.records, Selection(), load_policy(), AS_OF)
    assert [named(i) for i in of_type(data, "DetectedIssue")] == [
        (f.rule, f.session, f.exit, f.message) for f in findings
    ]
    assert len(findings) > 5
