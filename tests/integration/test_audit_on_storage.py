"""The audit on real storage gives what the pure core gives on every session: the query that
leaves out sessions without a possible finding loses none, on both engines."""

import io

from stepout.adapters.db import Database
from stepout.domain.instants import parse_instant
from stepout.policy.engine import audit
from stepout.policy.model import RULE_IDS, load_policy
from stepout.services.importing import import_records
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit, run_billing
from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

AS_OF = parse_instant("2027-01-01T00:00:00+00:00")


def test_sql_shortcut_and_full_scan_find_the_same(db: Database) -> None:
    buffer = io.BytesIO()
    write_jsonl(generate(GeneratorConfig(sessions=1500, seed=11)), buffer)
    buffer.seek(0)
    with db.uow() as uow:
        import_records(uow, buffer)
    policy = load_policy()
    with db.uow(read_only=True) as uow:
        shortcut = run_audit(uow.records, Selection(), policy, AS_OF)
        everything = audit(uow.records.bundles(Selection()), policy, AS_OF)
        billing_only = run_audit(
            uow.records, Selection(), policy, AS_OF, ["billed-code-unsupported"]
        )
    assert shortcut == everything
    assert {f.rule for f in shortcut} == set(RULE_IDS)
    assert billing_only == [f for f in everything if f.rule == "billed-code-unsupported"]


def test_billing_for_unsupported_sessions_reads_less_and_finds_the_same(db: Database) -> None:
    buffer = io.BytesIO()
    write_jsonl(generate(GeneratorConfig(sessions=1500, seed=12)), buffer)
    buffer.seek(0)
    with db.uow() as uow:
        import_records(uow, buffer)
    with db.uow(read_only=True) as uow:
        every = list(run_billing(uow.records, Selection()))
        unsupported = list(run_billing(uow.records, Selection(), {"unsupported"}))
        undercoded = list(run_billing(uow.records, Selection(), {"undercoded", "unsupported"}))
    assert unsupported == [line for line in every if line.status == "unsupported"]
    assert len(unsupported) > 10
    assert undercoded == [line for line in every if line.status in ("undercoded", "unsupported")]
