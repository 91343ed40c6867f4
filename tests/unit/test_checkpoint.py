"""Checkpoints in plain data: the signed format, and what `check` says of chains that hold
a checkpoint, lost their tail, were rewritten, or are broken."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from stepout.crypto.keys import Keys, generated_material
from stepout.domain.chain import GENESIS, VerifyResult
from stepout.services.checkpoint import CheckpointError, check, parse, take

AT = 1_796_000_000_000_000
KEYS = Keys(generated_material())


@dataclass
class FakeChains:
    """Chains of `lengths` entries whose hash at seq n is `h<n>` (and `hashes` overrides)."""

    lengths: dict[str, int] = field(default_factory=lambda: {"ledger": 10, "audit": 4})
    hashes: dict[tuple[str, int], str] = field(default_factory=dict)
    broken: dict[str, tuple[int, str]] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    derived: list[str] = field(default_factory=list)

    def hash(self, chain: str, seq: int) -> str:
        return self.hashes.get((chain, seq), f"{chain[0]}{seq:063d}")

    def verify_chains(self) -> Mapping[str, VerifyResult]:
        results = {}
        for name, n in self.lengths.items():
            if name in self.broken:
                at, reason = self.broken[name]
                results[name] = VerifyResult(at - 1, at, reason, self.hash(name, at - 1))
            else:
                results[name] = VerifyResult(n, head=self.hash(name, n) if n else GENESIS)
        return results

    def chain_hash_at(self, chain: str, seq: int) -> str | None:
        return self.hash(chain, seq) if seq <= self.lengths[chain] else None

    def projection_counts(self) -> Mapping[str, tuple[int, int]]:
        return self.counts

    def derived_problems(self) -> list[str]:
        return self.derived


def test_a_checkpoint_round_trips_and_holds() -> None:
    chains = FakeChains()
    taken = take(chains, KEYS, "sqlite:///x.db", AT)
    again = parse(taken.to_json())
    assert again == taken
    assert again.marks["ledger"].count == 10
    assert again.marks["audit"].head == chains.hash("audit", 4)
    chains.lengths = {"ledger": 12, "audit": 5}  # grown since: still holds
    report = check(chains, KEYS, again)
    assert report.ok, report.problems


def test_a_shorter_chain_is_a_cut_tail() -> None:
    chains = FakeChains()
    taken = take(chains, KEYS, "db", AT)
    chains.lengths["audit"] = 2
    (problem,) = check(chains, KEYS, taken).problems
    assert (problem.chain, problem.entry) == ("audit", 3)
    assert str(problem).startswith("audit trail, entry 3: entries 3 to 4 are missing")


def test_a_different_hash_at_the_mark_is_a_rewrite() -> None:
    chains = FakeChains()
    taken = take(chains, KEYS, "db", AT)
    chains.hashes[("ledger", 10)] = "f" * 64
    (problem,) = check(chains, KEYS, taken).problems
    assert (problem.chain, problem.entry) == ("ledger", 10)
    assert "rewritten" in str(problem)


def test_a_break_is_named_once() -> None:
    chains = FakeChains()
    taken = take(chains, KEYS, "db", AT)
    chains.broken["ledger"] = (6, "hash does not match the entry's content")
    (problem,) = check(chains, KEYS, taken).problems
    assert str(problem) == "ledger broken at entry 6: hash does not match the entry's content"


def test_a_broken_chain_gets_no_checkpoint() -> None:
    chains = FakeChains(broken={"audit": (1, "hash does not match the audit entry's content")})
    with pytest.raises(CheckpointError, match=r"audit trail broken at entry 1: .* key file"):
        take(chains, KEYS, "db", AT)


def test_an_edited_or_foreign_checkpoint_is_refused() -> None:
    chains = FakeChains()
    raw = take(chains, KEYS, "db", AT).to_json()
    edited = parse(raw.replace(b'"count": 10', b'"count": 9'))
    assert "the file was altered" in str(check(chains, KEYS, edited).problems[0])
    foreign = take(chains, Keys(generated_material()), "db", AT)
    assert "another key" in str(check(chains, KEYS, foreign).problems[0])


def test_query_tables_out_of_step_with_the_ledger_are_reported() -> None:
    chains = FakeChains(counts={"sessions": (9, 10), "exits": (3, 3)})
    (problem,) = check(chains, KEYS).problems
    assert str(problem).startswith("query tables: the sessions table has 9 rows")


def test_a_rollup_that_disagrees_is_reported() -> None:
    chains = FakeChains(derived=["dashboard_days: practice p1: 2 rows differ"])
    (problem,) = check(chains, KEYS).problems
    assert str(problem) == (
        "query tables: dashboard_days: practice p1: 2 rows differ (stepout rebuild rebuilds it)"
    )
    assert check(chains, KEYS, projections=False).problems == ()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a Stepout checkpoint"),
        (b'{"format": "stepout-checkpoint/1"}', "unexpected or missing"),
    ],
)
def test_a_malformed_file_says_what_is_wrong(raw: bytes, says: str) -> None:
    with pytest.raises(CheckpointError, match=says):
        parse(raw)


def test_a_bad_count_is_refused() -> None:
    raw = take(FakeChains(), KEYS, "db", AT).to_json().replace(b'"count": 10', b'"count": -1')
    with pytest.raises(CheckpointError, match=r"ledger\.count"):
        parse(raw)


def test_no_password_leaves_the_machine() -> None:
    """Neither the checkpoint's database nor pg_dump's command line carries the password."""
    from stepout.adapters.db.backup import pg_conninfo
    from stepout.adapters.db.engine import normalize_url
    from stepout.cli.admin import plain_url

    url = "postgresql+psycopg://app:s3cret@db.internal:5432/stepout"
    assert plain_url(url) == "postgresql+psycopg://app@db.internal:5432/stepout"
    conninfo, env = pg_conninfo(normalize_url(url))
    assert conninfo == "postgresql://app@db.internal:5432/stepout"
    assert env["PGPASSWORD"] == "s3cret"
