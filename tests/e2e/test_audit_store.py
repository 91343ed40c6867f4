"""`stepout audit` keeps its JSON output as it was and, judging now under the policy in force,
brings the findings store up to date; with `--as-of` it leaves the store alone."""

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from stepout.adapters.db.engine import create_engine_for
from tests.e2e.test_cli import EXIT, SESSION, cli, run, write

__all__ = ["cli"]  # the fixture, used by name

FIELDS = {"rule", "severity", "session", "exit", "therapist", "message", "policy_version"}


def _stored(database_url: str) -> tuple[int, int]:
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT set_config('stepout.practice', '*', false)"))
            runs = int(conn.execute(text("SELECT COUNT(*) FROM finding_runs")).scalar_one())
            rows = int(conn.execute(text("SELECT COUNT(*) FROM findings")).scalar_one())
    finally:
        engine.dispose()
    return runs, rows


@pytest.mark.parametrize("as_of", [None, "2026-12-01T00:00:00+00:00"])
def test_audit_prints_as_before_and_refreshes_the_store_when_judging_now(
    cli: CliRunner, tmp_path: Path, database_url: str, as_of: str | None
) -> None:
    run(cli, "import", write(tmp_path, "month.jsonl", SESSION, EXIT))
    args = ["audit", "--format", "json"] + (["--as-of", as_of] if as_of else [])
    first = json.loads(run(cli, *args))
    assert first
    assert all(set(f) == FIELDS for f in first)
    if as_of is None:
        runs, rows = _stored(database_url)
        assert (runs, rows) == (1, len(first))  # one practice, every finding of it
        assert json.loads(run(cli, *args)) == first  # the store changes nothing printed
    else:
        assert _stored(database_url) == (0, 0)
