"""Queries for supervisors and billers: the audit, billing reconciliation and a summary."""

from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from stepout.domain.billing import BillingLine, reconcile
from stepout.domain.instants import Instant
from stepout.policy.engine import audit
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
    return audit(records.bundles(selection), policy, as_of, rules)


def run_billing(records: Records, selection: Selection) -> Iterator[BillingLine]:
    for bundle in records.bundles(selection):
        yield reconcile(bundle.session, bundle.exits)


@dataclass
class Summary:
    """What a clinical director wants first: volume, exits, findings, billing."""

    sessions: int = 0
    sessions_with_exits: int = 0
    exits_by_reason: Counter[str] = field(default_factory=Counter)
    findings_by_rule: Counter[tuple[str, str]] = field(default_factory=Counter)
    billing_by_status: Counter[str] = field(default_factory=Counter)
    therapists: int = 0

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
