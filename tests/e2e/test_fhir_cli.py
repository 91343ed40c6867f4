"""`stepout export fhir` and `stepout import fhir`, end to end: the Bundle written to a file,
read back into another database, every step in the audit trail."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepout.adapters.db import audit as sql_audit
from stepout.adapters.fhir.resources import model_class
from stepout.bootstrap import open_database
from stepout.cli import app
from stepout.config import Settings
from tests.unit.test_fhir import GOLDEN, RECORDS

AS_OF = "2026-11-10T00:00:00+00:00"


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPOUT_DATABASE_URL", database_url)
    monkeypatch.delenv("STEPOUT_POLICY", raising=False)
    runner = CliRunner()
    run(runner, "init")
    return runner


def test_export_then_import_into_an_empty_database(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(cli, "import", str(RECORDS))
    out = tmp_path / "bundle.json"
    said = run(cli, "export", "fhir", "--release", "r4b", "--as-of", AS_OF, "--out", str(out))
    assert "FHIR resources" in said
    assert out.read_bytes() == (GOLDEN / "r4b" / "bundle.json").read_bytes()
    model_class("r4b", "Bundle").model_validate_json(out.read_bytes())
    one = json.loads(run(cli, "export", "fhir", "--practice", "p2", "--as-of", AS_OF))
    assert {e["resource"]["resourceType"] for e in one["entry"]} >= {"Encounter", "AdverseEvent"}

    monkeypatch.setenv("STEPOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    run(cli, "init")
    said = run(cli, "import", "fhir", str(out))
    assert "created 5 sessions" in said
    exported = run(cli, "export", "records")
    kinds = [json.loads(line)["kind"] for line in exported.splitlines()]
    assert kinds == ["session"] * 5


def test_a_bad_bundle_is_rejected_by_entry_and_nothing_is_stored(
    cli: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    encounter = {"resourceType": "Encounter", "id": "x1", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                           "code": "AMB"}}  # fmt: skip
    bad.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                               "entry": [{"resource": encounter}]}))  # fmt: skip
    output = run(cli, "import", "fhir", str(bad), code=1)
    assert "entry 0: Encounter.period.start: missing" in output
    assert "nothing was stored" in output
    assert run(cli, "export", "records") == ""
    assert "no such file" in run(cli, "import", "fhir", str(tmp_path / "none.json"), code=2)
    assert "--release" in run(cli, "export", "fhir", "--release", "r3", code=2)


def test_the_export_and_the_import_are_in_the_audit_trail(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "import", str(RECORDS))
    out = tmp_path / "bundle.json"
    run(cli, "export", "fhir", "--from", "2026-11-03", "--to", "2026-11-04", "--out", str(out))
    run(cli, "export", "fhir", "--practice", "p2")
    run(cli, "import", "fhir", str(out))
    db = open_database(Settings())
    try:
        with db.engine.connect() as conn:
            entries = [
                (e.action, e.target, e.practice, e.item_count) for e in sql_audit.entries(conn)
            ]
    finally:
        db.dispose()
    exports = [e for e in entries if e[0] == "fhir.export"]
    assert exports == [
        ("fhir.export", "2026-11-03..2026-11-04", None, None),
        ("fhir.export", "list", "p2", None),
    ]
    assert entries[-1] == ("records.import", None, None, 4)  # the 4 sessions of those days
