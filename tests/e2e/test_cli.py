"""The command line, end to end, on SQLite and PostgreSQL: what a biller, a supervisor and
the IT person type, and what they get back."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepout import __version__
from stepout.adapters.db.engine import create_engine_for
from stepout.cli import app

SESSION = (
    '{"kind":"session","id":"s1","practice":"p1","therapist":"t1","client":"c1","room":"r1",'
    '"modality":"in_person","start":"2026-11-03T09:00:00-05:00",'
    '"end":"2026-11-03T09:55:00-05:00","billed_codes":["90837"]}'
)
# 10 minutes out: 55 - 10 = 45 net minutes, so 90837 (53) is no longer supported.
EXIT = (
    '{"kind":"exit","id":"e1","session":"s1","source":"declared","reason":"technical",'
    '"left_at":"2026-11-03T09:20:00-05:00","returned_at":"2026-11-03T09:30:00-05:00",'
    '"client_informed":"before_leaving","explanation":"Fixing the video link.",'
    '"safeguards":["records_secured","screen_locked","door_closed"],"checked_in":true,'
    '"signed_at":"2026-11-03T10:00:00-05:00"}'
)
AS_OF = "2026-11-10T00:00:00+00:00"


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPOUT_DATABASE_URL", database_url)
    monkeypatch.delenv("STEPOUT_POLICY", raising=False)
    runner = CliRunner()
    run(runner, "init")
    return runner


def run(cli: CliRunner, *args: str, input: str | None = None, code: int = 0) -> str:
    result = cli.invoke(app, list(args), input=input)
    assert result.exit_code == code, result.output
    return result.output


def write(tmp_path: Path, name: str, *lines: str) -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_postgresql_database_must_be_initialised_first(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.setenv("STEPOUT_DATABASE_URL", postgres_url)
    output = run(CliRunner(), "audit", code=2)
    assert "stepout init" in output


def test_version_is_printed(cli: CliRunner) -> None:
    assert __version__ in run(cli, "--version")


def test_biller_finds_the_session_whose_code_the_exit_broke(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "import", write(tmp_path, "month.jsonl", SESSION, EXIT))
    lines = json.loads(run(cli, "billing", "--format", "json", "--status", "unsupported"))
    assert lines == [
        {
            "session": "s1",
            "gross_minutes": 55,
            "net_minutes": 45,
            "billed_codes": ["90837"],
            "supported_codes": ["90834"],
            "status": "unsupported",
        }
    ]


def test_supervisor_sees_each_breach_with_rule_session_and_exit(
    cli: CliRunner, tmp_path: Path
) -> None:
    run(cli, "import", write(tmp_path, "month.jsonl", SESSION, EXIT))
    findings = json.loads(run(cli, "audit", "--format", "json", "--as-of", AS_OF))
    assert {(f["rule"], f["session"], f["exit"]) for f in findings} == {
        ("absence-too-long", "s1", "e1"),
        ("billed-code-unsupported", "s1", None),
    }
    assert all(f["therapist"] == "t1" and f["policy_version"] for f in findings)
    csv_out = run(cli, "audit", "--format", "csv", "--as-of", AS_OF, "--rule", "absence-too-long")
    header, *rows = csv_out.strip().splitlines()
    assert header == "rule,severity,session,exit,therapist,message,policy_version"
    assert len(rows) == 1
    assert rows[0].startswith("absence-too-long,warning,s1,e1,t1,")


def test_a_bad_file_is_rejected_whole_with_each_line_named(cli: CliRunner, tmp_path: Path) -> None:
    bad_exit = EXIT.replace(
        '"returned_at":"2026-11-03T09:30:00-05:00"', '"returned_at":"2026-11-03T09:10:00-05:00"'
    )
    path = write(tmp_path, "bad.jsonl", SESSION, "{not json", bad_exit)
    output = run(cli, "import", path, code=1)
    assert "line 2: json:" in output
    assert "line 3: returned_at:" in output
    assert "nothing was stored" in output
    assert json.loads(run(cli, "billing", "--format", "json")) == []


def test_reimporting_the_same_file_changes_nothing(cli: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "month.jsonl", SESSION, EXIT)
    run(cli, "import", path)
    assert "2 unchanged" in run(cli, "import", path)
    conflicting = SESSION.replace('"room":"r1"', '"room":"r2"')
    output = run(cli, "import", write(tmp_path, "other.jsonl", conflicting), code=1)
    assert "line 1: id:" in output


def test_import_reads_standard_input(cli: CliRunner) -> None:
    run(cli, "import", "-", input=SESSION + "\n")
    assert json.loads(run(cli, "billing", "--format", "json"))[0]["session"] == "s1"


def test_export_then_import_into_an_empty_database_gives_the_same_audit_and_billing(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = tmp_path / "generated.jsonl"
    run(cli, "generate", "--sessions", "300", "--seed", "7", "--out", str(generated))
    run(cli, "import", str(generated))
    audit = run(cli, "audit", "--format", "json", "--as-of", AS_OF)
    billing = run(cli, "billing", "--format", "json")
    exported = tmp_path / "exported.jsonl"
    run(cli, "export", "--out", str(exported))

    monkeypatch.setenv("STEPOUT_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    run(cli, "init")
    run(cli, "import", str(exported))
    assert run(cli, "audit", "--format", "json", "--as-of", AS_OF) == audit
    assert run(cli, "billing", "--format", "json") == billing
    assert len(json.loads(audit)) > 0


def test_audit_selects_sessions_by_start_date_inclusive(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "import", write(tmp_path, "month.jsonl", SESSION, EXIT))
    assert json.loads(
        run(cli, "billing", "--format", "json", "--from", "2026-11-03", "--to", "2026-11-03")
    )
    assert json.loads(run(cli, "billing", "--format", "json", "--from", "2026-11-04")) == []
    assert json.loads(run(cli, "billing", "--format", "json", "--to", "2026-11-02")) == []


def test_unknown_rule_and_bad_dates_are_clear_errors(cli: CliRunner) -> None:
    assert "unknown rule 'no-such-rule'" in run(cli, "audit", "--rule", "no-such-rule", code=2)
    assert "--from: expected a date" in run(cli, "audit", "--from", "03/11/2026", code=2)
    assert "--as-of" in run(cli, "audit", "--as-of", "2026-11-10T00:00:00", code=2)


def test_policy_show_prints_the_effective_policy_and_rejects_a_malformed_one(
    cli: CliRunner, tmp_path: Path
) -> None:
    shown = json.loads(run(cli, "policy", "show", "--format", "json"))
    assert "absence-too-long" in json.dumps(shown)
    broken = tmp_path / "policy.toml"
    broken.write_text('[policy]\nversion = "x1"\n[rules.no-such-rule]\nenabled = true\n')
    output = run(cli, "policy", "show", "--policy", str(broken), code=2)
    assert "no-such-rule" in output


def test_a_stricter_policy_file_changes_the_findings(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "import", write(tmp_path, "month.jsonl", SESSION, EXIT))
    strict = tmp_path / "strict.toml"
    strict.write_text(
        '[policy]\nversion = "strict-1"\n[rules.absence-too-long.limit_minutes]\ntechnical = 20\n'
    )
    findings = json.loads(
        run(cli, "audit", "--format", "json", "--as-of", AS_OF, "--policy", str(strict))
    )
    assert {f["rule"] for f in findings} == {"billed-code-unsupported"}
    assert {f["policy_version"] for f in findings} == {"strict-1"}


def test_verify_and_rebuild_keep_the_records(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "import", write(tmp_path, "month.jsonl", SESSION, EXIT))
    before = run(cli, "billing", "--format", "json")
    assert "3 entries verified" in run(cli, "verify")  # practice, session, exit
    run(cli, "rebuild")
    assert run(cli, "billing", "--format", "json") == before


def test_demo_builds_the_practice_and_can_run_twice(cli: CliRunner, database_url: str) -> None:
    first = run(cli, "demo", "--sessions", "500", "--no-serve")
    assert "Exits by reason" in first
    assert "Findings" in first
    second = " ".join(run(cli, "demo", "--sessions", "500", "--no-serve").split())
    assert "(0 records added," in second
    # The demo's records came in through an import, which the audit trail records once.
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            imports = conn.exec_driver_sql(
                "SELECT actor, channel FROM audit_log WHERE action = 'records.import'"
            ).all()
    finally:
        engine.dispose()
    assert len(imports) == 1
    assert imports[0][0].startswith("cli:")
    assert imports[0][1] == "cli"
