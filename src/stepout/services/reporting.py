"""Queries for supervisors and billers: the audit, billing reconciliation and a summary."""

from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from stepout.domain.billing import BillingLine, minimum_net_minutes, reconcile
from stepout.domain.instants import Instant
from stepout.policy.engine import active_rules, audit
from stepout.policy.findings import Finding
from stepout.policy.model import Policy
from stepout.services.ports import Records, Selection, SessionBundle


def run_audit(
    records: Records,
    selection: Selection,
    policy: Policy,
    as_of: Instant,
    rules: Collection[str] | None = None,
) -> list[Finding]:
    """The findings over the selection. Storage reads only the sessions that can yield one
    (see `Records.bundles_to_judge`); the core judges them."""
    active = active_rules(policy, rules)
    floor = minimum_net_minutes if "billed-code-unsupported" in active else None
    bundles, counts = records.bundles_to_judge(
        selection, floor, count_therapists="exit-rate-high" in active
    )
    return audit(bundles, policy, as_of, active, therapist_counts=counts)


def run_billing(
    records: Records, selection: Selection, statuses: Collection[str] | None = None
) -> Iterator[BillingLine]:
    """Each session's billing line, or only those with one of `statuses`. Asking only for
    `unsupported` reads only the sessions that can be: those with an exit, and those whose
    gross minutes fall short of what their billed codes need."""
    if statuses is not None and set(statuses) <= {"unsupported"}:
        bundles, _ = records.bundles_to_judge(
            selection, minimum_net_minutes, count_therapists=False
        )
    else:
        bundles = records.bundles(selection)
    for bundle in bundles:
        line = reconcile(bundle.session, bundle.exits)
        if statuses is None or line.status in statuses:
            yield line


@dataclass
class Summary:
    """What a clinical director wants first: volume, exits, findings, billing."""

    sessions: int = 0
    sessions_with_exits: int = 0
    exits_by_reason: Counter[str] = field(default_factory=Counter)
    findings_by_rule: Counter[tuple[str, str]] = field(default_factory=Counter)
    billing_by_status: Counter[str] = field(default_factory=Counter)
    therapists: int = 0
    first_start: Instant | None = None
    last_start: Instant | None = None

    @property
    def exits(self) -> int:
        return sum(self.exits_by_reason.values())


def summarize(records: Records, selection: Selection, policy: Policy, as_of: Instant) -> Summary:
    """One pass over the selection: the audit reads the bundles as they are counted."""
    summary = Summary()
    therapists: set[str] = set()

    def counted() -> Iterator[SessionBundle]:
        for bundle in records.bundles(selection):
            summary.sessions += 1
            start = bundle.session.start
            if summary.first_start is None or start < summary.first_start:
                summary.first_start = start
            if summary.last_start is None or start > summary.last_start:
                summary.last_start = start
            therapists.add(bundle.session.therapist)
            if bundle.exits:
                summary.sessions_with_exits += 1
            for x in bundle.exits:
                summary.exits_by_reason[x.reason or "unclassified"] += 1
            summary.billing_by_status[reconcile(bundle.session, bundle.exits).status] += 1
            yield bundle

    for finding in audit(counted(), policy, as_of):
        summary.findings_by_rule[(finding.rule, finding.severity)] += 1
    summary.therapists = len(therapists)
    return summary
