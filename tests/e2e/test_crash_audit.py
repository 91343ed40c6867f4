"""Attack test 6(e), short: writer processes declaring exits concurrently through the
workflow, killed with SIGKILL at random moments, on SQLite and PostgreSQL. After each round no
acknowledged exit is lost, no ledger write lacks its audit record (nor the reverse), both chains
verify, and SQLite's integrity check passes (tests/crashing.py says how). The long version is
`python -m bench.crash`."""

import pytest

from tests.crashing import crash_rounds

pytestmark = pytest.mark.slow

ROUNDS = 3
WRITERS = 3


def test_killed_writers_lose_no_acknowledged_exit_and_no_audit_record(database_url: str) -> None:
    figures = crash_rounds(database_url, ROUNDS, WRITERS, seed=11, max_delay=0.5)
    assert figures.rounds == ROUNDS
    assert figures.kills == ROUNDS * WRITERS
    assert figures.acknowledged >= ROUNDS * WRITERS  # each writer acknowledged one at least
