"""A process killed in the middle of an import leaves all of the file or none of it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

pytestmark = pytest.mark.slow

SESSIONS = 20_000


def _stepout(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "STEPOUT_DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-c", "from stepout.cli import main; main()", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(url: str, *args: str) -> str:
    proc = _stepout(url, *args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_import_killed_midway_stores_nothing_then_a_rerun_stores_everything(
    database_url: str, tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    with records.open("wb") as f:
        total = write_jsonl(generate(GeneratorConfig(sessions=SESSIONS, seed=3)), f)
    _finish(database_url, "init")

    killed = 0
    for delay in (0.4, 0.9, 1.6):
        proc = _stepout(database_url, "import", str(records))
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate(timeout=300)
        assert _count(database_url, "sessions") in (0, SESSIONS)
        if _count(database_url, "sessions") == 0:
            assert _count(database_url, "events") == 0
            assert _count(database_url, "practices") == 0
    assert killed, "every import finished before it could be killed: use a larger file"

    assert "verified" in _finish(database_url, "verify")
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url)
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        engine.dispose()

    _finish(database_url, "import", str(records))
    stored = (_count(database_url, t) for t in ("sessions", "exits", "concerns"))
    assert sum(stored) == total
    assert "verified" in _finish(database_url, "verify")
