"""The synthetic practice exercises the whole protocol: `stepout demo` shows every rule."""

import io

import pytest

from stepout.adapters.memory import MemoryUnitOfWork
from stepout.domain.instants import MICROS_PER_DAY, parse_instant
from stepout.policy.model import RULE_IDS, load_policy
from stepout.services.importing import import_records
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit, summarize
from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl


@pytest.mark.parametrize("seed", [0, 1, 2026])
def test_every_rule_fires_on_500_generated_sessions(seed: int) -> None:
    buffer = io.BytesIO()
    write_jsonl(generate(GeneratorConfig(sessions=500, seed=seed)), buffer)
    buffer.seek(0)
    with MemoryUnitOfWork() as uow:
        import_records(uow, buffer)
        last_end = max(b.session.end or 0 for b in uow.records.bundles(Selection()))
        as_of = last_end + 30 * MICROS_PER_DAY
        findings = run_audit(uow.records, Selection(), load_policy(), as_of)
        summary = summarize(uow.records, Selection(), load_policy(), as_of)
    assert {f.rule for f in findings} == set(RULE_IDS)
    assert summary.sessions == 500
    assert sum(summary.findings_by_rule.values()) == len(findings)


def test_the_audit_reads_the_same_findings_with_or_without_the_storage_shortcut() -> None:
    """`bundles_to_judge` leaves out sessions that cannot yield a finding; judging every
    session instead must give the same findings."""
    from stepout.policy.engine import audit

    buffer = io.BytesIO()
    write_jsonl(generate(GeneratorConfig(sessions=2000, seed=5)), buffer)
    buffer.seek(0)
    as_of = parse_instant("2027-01-01T00:00:00+00:00")
    with MemoryUnitOfWork() as uow:
        import_records(uow, buffer)
        shortcut = run_audit(uow.records, Selection(), load_policy(), as_of)
        everything = audit(uow.records.bundles(Selection()), load_policy(), as_of)
    assert shortcut == everything
    assert len(shortcut) > 100
