"""The findings store (`stepout.adapters.db.findings_store`) on both engines: an audit run of a
practice stores exactly the findings `stepout audit` finds, by the week of their session's
start in the practice's time zone; it is stale when the ledger moves on (but not for a review
step), when a time limit passes, or when the policy changes; the review's lookup reads it;
`stepout verify`'s counts see its rows, and those of `finding_reviews`.

The data set is test_dashboard's (practice p1 in America/New_York, p2 in UTC)."""

from collections import Counter
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import text

from stepout.adapters.db import Database, tenancy
from stepout.adapters.db.findings_store import (
    FindingsStore,
    findings_by_week,
    judge,
    lookup,
    refresh,
    refresh_soon,
)
from stepout.domain.instants import MICROS_PER_DAY, MICROS_PER_HOUR, parse_instant
from stepout.domain.reviews import finding_key
from stepout.policy.findings import Finding
from stepout.policy.model import Policy, load_policy, policy_from_toml
from stepout.services.audit import cli_caller
from stepout.services.checkpoint import projection_problems
from stepout.services.dashboard import DashboardFilter
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit
from stepout.services.reviews import locate, review_step
from tests.integration.test_dashboard import FIXED, NOV2, OCT19, OCT26, PERIOD, _load
from tests.integration.test_reviews import SUPER
from tests.integration.test_reviews import _setup as _review_setup

POLICY = load_policy()
AS_OF = parse_instant("2026-11-30T12:00:00+00:00")
ZONE = "America/New_York"
# Each p1 session's week, by hand: s0 started on Sunday 10-25 local (Monday in UTC); s4 on
# Sunday 11-01 local (Monday 11-02 in UTC).
WEEK_OF = {
    "s0": OCT19, "s1": OCT26, "s2": OCT26, "s3": OCT26, "s4": OCT26,
    "s5": NOV2, "s6": NOV2, "s7": NOV2,
}  # fmt: skip


@pytest.fixture
def fixed(db: Database) -> Database:
    _load(db, FIXED, {"p1": ZONE, "p2": "UTC"})
    return db


def _audit(db: Database, selection: Selection) -> list[Finding]:
    with db.uow(read_only=True) as uow:
        return list(run_audit(uow.records, selection, POLICY, AS_OF))


def test_a_run_stores_what_the_audit_finds(fixed: Database) -> None:
    run = refresh(fixed, "p1", POLICY, AS_OF)
    with fixed.uow(read_only=True) as uow:
        stored = FindingsStore(uow.connection).findings("p1", POLICY.version)
        assert FindingsStore(uow.connection).run("p1") == run
    assert stored == _audit(fixed, Selection(practice="p1"))
    assert run.findings == len(stored) > 0
    assert (run.policy_version, run.timezone, run.as_of) == (POLICY.version, ZONE, AS_OF)


def test_the_weekly_counts_match_the_audit_by_the_sessions_local_week(fixed: Database) -> None:
    refresh(fixed, "p1", POLICY, AS_OF)
    f = DashboardFilter("p1", *PERIOD)
    with fixed.uow(read_only=True) as uow:
        counts = FindingsStore(uow.connection).week_counts(f, ZONE)
    got = {(c.week, c.rule, c.severity): c.findings for c in counts}
    by_hand: Counter[tuple[date, str, str]] = Counter()
    for finding in run_audit_p1(fixed):
        if finding.session in WEEK_OF:
            by_hand[(WEEK_OF[finding.session], finding.rule, finding.severity)] += 1
    assert got == dict(by_hand)
    # Pinned by hand: the sensor exit of s4 (no reason) is undeclared, in the week of 10-26
    # though it started on Monday 11-02 in UTC; x1 and x2 told the client nothing; s5 had two.
    assert got[(OCT26, "undeclared-exit", "violation")] == 1
    assert got[(OCT26, "client-not-informed", "violation")] == 2
    assert got[(OCT19, "client-not-informed", "violation")] == 1
    assert got[(NOV2, "repeated-exits", "warning")] == 1
    # The filter narrows them: therapist t2 had s4, s5, s6.
    with fixed.uow(read_only=True) as uow:
        t2 = FindingsStore(uow.connection).week_counts(replace(f, therapist="t2"), ZONE)
    assert {(c.week, c.rule) for c in t2} <= {(w, r) for w, r, _ in by_hand}
    assert sum(c.findings for c in t2) == sum(
        1 for x in run_audit_p1(fixed) if x.session in {"s4", "s5", "s6"}
    )
    # The report's path, when the store does not hold at its instant, counts alike.
    with fixed.uow(read_only=True) as uow:
        fresh = findings_by_week(uow.connection, uow.records, f, ZONE, POLICY, AS_OF - 1)
    assert {(c.week, c.rule, c.severity): c.findings for c in fresh.counts} == got


def run_audit_p1(db: Database) -> list[Finding]:
    with db.uow(read_only=True) as uow:
        return run_audit(uow.records, Selection(practice="p1"), POLICY, AS_OF)


def _stale(db: Database, at: int, policy: Policy = POLICY) -> str | None:
    with db.uow(read_only=True) as uow:
        store = FindingsStore(uow.connection)
        return store.stale(store.run("p1"), policy, ZONE, at)


def test_a_run_is_stale_when_the_ledger_moves_on_or_a_limit_passes(fixed: Database) -> None:
    assert _stale(fixed, AS_OF) == "no audit stored yet"
    run = refresh(fixed, "p1", POLICY, AS_OF)
    assert _stale(fixed, AS_OF) is None
    assert refresh(fixed, "p1", POLICY, AS_OF + 1) == run  # current: not recomputed
    # Another practice's records do not make p1's stale; p1's do.
    from tests.integration.test_dashboard import _exit, _session

    _load(fixed, [_session("q2", "p2", "t9", "r1", "2026-11-05T10:00:00+00:00", 50, [])], {})
    assert _stale(fixed, AS_OF) is None
    late = "2026-11-29T10:00:00-05:00"
    _load(fixed, [_session("s10", "p1", "t1", "r1", late, 50, ["90834"]),
                  _exit("x10", "s10", "2026-11-29T10:10:00-05:00",
                        "2026-11-29T10:15:00-05:00", "technical")], {})  # fmt: skip
    assert _stale(fixed, AS_OF) == "records changed"
    run = refresh(fixed, "p1", POLICY, AS_OF)
    # x10 is not signed: documentation-late will hold 24 h after s10 ended (15:50 UTC).
    assert run.valid_until == parse_instant("2026-11-30T15:50:00+00:00")
    assert _stale(fixed, run.valid_until) is None
    assert _stale(fixed, run.valid_until + 1) == "a time limit passed"
    later = refresh(fixed, "p1", POLICY, run.valid_until + MICROS_PER_HOUR)
    with fixed.uow(read_only=True) as uow:
        rules = {
            f.rule for f in FindingsStore(uow.connection).findings("p1", POLICY.version)
            if f.exit == "x10"
        }  # fmt: skip
    assert "documentation-late" in rules
    assert later.findings == run.findings + 1
    stricter = policy_from_toml(
        '[policy]\nversion = "test-2"\n[rules.no-check-in]\nenabled = false\n'
    )
    assert _stale(fixed, later.as_of, stricter) == "the policy changed"
    assert _stale(fixed, later.as_of - MICROS_PER_DAY) == "the stored audit judged a later time"


def test_a_review_step_leaves_the_run_current_and_finds_the_finding_in_it(db: Database) -> None:
    _review_setup(db)
    at = parse_instant("2026-11-30T12:00:00+00:00")
    run = refresh(db, "p1", POLICY, at)
    with db.uow(read_only=True) as uow:
        first = FindingsStore(uow.connection).findings("p1", POLICY.version)[0]
    key = finding_key("p1", first)
    with tenancy.scope("p1"):
        review_step(db.uow, POLICY, SUPER, key, "acknowledge", at=at, caller=cli_caller(),
                    note="synthetic note", lookup=lookup)  # fmt: skip
    with db.uow(read_only=True) as uow:
        store = FindingsStore(uow.connection)
        assert store.stale(store.run("p1"), POLICY, "UTC", at) is None
        assert store.run("p1") == run
    # With a stale store, the lookup refreshes it in the step's transaction.
    from tests.integration.builders import session

    with db.uow() as uow:
        uow.ledger.append([session("s9", at - MICROS_PER_DAY)])
        uow.commit()
    with tenancy.scope("p1"), db.uow() as uow:
        second = FindingsStore(uow.connection).findings("p1", POLICY.version)[1]
        review = locate(uow, "p1", finding_key("p1", second), POLICY, at, None, lookup)
        assert review.rule == second.rule
        refreshed = FindingsStore(uow.connection).run("p1")
        assert refreshed is not None
        assert refreshed.ledger_seq > run.ledger_seq
        uow.commit()


def test_verify_counts_the_findings_store_and_the_reviews(fixed: Database) -> None:
    refresh(fixed, "p1", POLICY, AS_OF)
    counts = fixed.projection_counts()
    assert counts["findings"][0] == counts["findings"][1] > 0
    assert counts["finding_reviews"] == (0, 0)
    assert projection_problems(counts) == []
    with tenancy.scope(tenancy.ALL), fixed.engine.begin() as conn:
        conn.execute(text("DELETE FROM findings WHERE n = 0"))
    problems = projection_problems(fixed.projection_counts())
    assert [p.message.split(":")[0] for p in problems] == [
        f"the findings table has {counts['findings'][0] - 1:,} rows where "
        f"{counts['findings'][0]:,} are expected"
    ]
    assert "stepout audit" in problems[0].message


def test_judge_never_reads_another_practice(fixed: Database) -> None:
    with fixed.uow(read_only=True) as uow:
        judged = judge(uow.records, "p1", ZONE, POLICY, AS_OF)
    assert all(row[0] == "p1" for row in judged.rows)
    assert not any(row[5] == "q1" for row in judged.rows)


def test_the_pages_refresh_runs_in_the_requests_practice_scope(
    fixed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web app has no process-wide scope: the refresh's thread carries the request's."""
    monkeypatch.setattr(tenancy, "_default", [None])
    with tenancy.scope("p1"):
        assert refresh_soon(fixed, "p1", POLICY, AS_OF, None)
    with tenancy.scope(tenancy.ALL), fixed.uow(read_only=True) as uow:
        run = FindingsStore(uow.connection).run("p1")
    assert run is not None
    assert run.as_of == AS_OF
    with tenancy.sealed(), pytest.raises(tenancy.NoTenantScope):
        refresh_soon(fixed, "p1", POLICY, AS_OF + 1, None)
