"""The audit: every rule of the policy over a stream of session bundles.

Pure and single-pass: the bundles are read once, in order, and only the findings and two
per-therapist counters are kept. Most sessions have no exit and no concern; they take a fast
path that only reconciles billing and counts the session for `exit-rate-high`.

Order of the findings: bundle by bundle in input order, the session's own findings
(`repeated-exits`, `billed-code-unsupported`), then each exit's (exits by `left_at`, id; rules
in RULE_IDS order), then each concern's (by `raised_at`, id); `exit-rate-high` last, by
therapist.
"""

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from stepout.domain.bundle import SessionBundle
from stepout.domain.instants import Instant
from stepout.domain.records import Concern, Exit, Session
from stepout.policy.findings import Finding
from stepout.policy.model import RULE_IDS, Policy
from stepout.policy.rules import ConcernCheck, ExitCheck, RateCheck, SessionCheck
from stepout.policy.rules_exit import EXIT_RULES, undeclared_exit
from stepout.policy.rules_session import (
    billed_code_unsupported,
    concern_unacknowledged,
    exit_rate_high,
    repeated_exits,
)

C = TypeVar("C")
Add = Callable[[Finding], None]


@dataclass(frozen=True, slots=True)
class Plan:
    """The checks one audit runs, built once from the policy, the rules asked for and as-of."""

    exit_checks: tuple[ExitCheck, ...]
    undeclared: ExitCheck | None
    repeated: SessionCheck | None
    billing: SessionCheck | None
    concern: ConcernCheck | None
    rate: RateCheck | None


def active_rules(policy: Policy, rules: Collection[str] | None = None) -> tuple[str, ...]:
    """The rules an audit computes: enabled in the policy and, if given, among `rules`
    (ValueError for an id that is not a rule)."""
    if rules is not None:
        unknown = sorted(set(rules) - set(RULE_IDS))
        if unknown:
            raise ValueError(
                f"unknown rule id: {', '.join(unknown)} (known: {', '.join(RULE_IDS)})"
            )
    return tuple(r for r in RULE_IDS if policy.rule(r).enabled and (rules is None or r in rules))


def plan(policy: Policy, as_of: Instant, rules: Collection[str] | None = None) -> Plan:
    """Build the checks of the active rules (see `active_rules`)."""
    on = active_rules(policy, rules)

    def build(rule_id: str, builder: Callable[[Policy, Instant], C]) -> C | None:
        return builder(policy, as_of) if rule_id in on else None

    return Plan(
        exit_checks=tuple(b(policy, as_of) for r, b in EXIT_RULES.items() if r in on),
        undeclared=build("undeclared-exit", undeclared_exit),
        repeated=build("repeated-exits", repeated_exits),
        billing=build("billed-code-unsupported", billed_code_unsupported),
        concern=build("concern-unacknowledged", concern_unacknowledged),
        rate=build("exit-rate-high", exit_rate_high),
    )


def audit(
    bundles: Iterable[SessionBundle],
    policy: Policy,
    as_of: Instant,
    rules: Collection[str] | None = None,
    *,
    therapist_counts: Mapping[str, tuple[int, int]] | None = None,
) -> list[Finding]:
    """The findings of `policy` over the ended sessions among `bundles`, judged at `as_of`.

    `rules` restricts the audit to these rule ids (among those the policy enables); the others
    are not computed. Sessions still in progress are skipped.

    `therapist_counts` (therapist -> sessions, sessions with an exit, over the whole
    selection) lets storage leave out the sessions that cannot yield a finding: no exit, no
    concern and enough minutes for their billed codes (`minimum_net_minutes`). Without it, the
    counts come from the bundles, which must then be every session of the selection.
    """
    p = plan(policy, as_of, rules)
    findings: list[Finding] = []
    add = findings.append
    billing, concern, rate = p.billing, p.concern, p.rate
    # For exit-rate-high, per therapist: sessions, and sessions with at least one exit.
    sessions: dict[str, int] = {}
    with_exits: dict[str, int] = {}
    counting = rate is not None and therapist_counts is None
    if therapist_counts is not None:
        sessions = {t: n for t, (n, _) in therapist_counts.items()}
        with_exits = {t: k for t, (_, k) in therapist_counts.items() if k}
    count = sessions.get
    for bundle in bundles:
        session = bundle.session
        end = session.end
        if end is None:
            continue
        if counting:
            therapist = session.therapist
            sessions[therapist] = count(therapist, 0) + 1
        exits = bundle.exits
        if exits:
            if counting:
                with_exits[therapist] = with_exits.get(therapist, 0) + 1
            _judge_session(session, end, exits, p, add)
        elif billing is not None and session.billed_codes:  # the fast path
            finding = billing(session, end, exits)
            if finding is not None:
                add(finding)
        if concern is not None and bundle.concerns:
            _judge_concerns(session, bundle.concerns, concern, add)
    if rate is not None:
        findings += rate(sessions, with_exits)
    return findings


def _judge_session(
    session: Session, end: Instant, exits: tuple[Exit, ...], p: Plan, add: Add
) -> None:
    """The findings of a session with exits: its own, then each exit's."""
    for session_check in (p.repeated, p.billing):
        if session_check is not None:
            finding = session_check(session, end, exits)
            if finding is not None:
                add(finding)
    if len(exits) > 1:
        exits = tuple(sorted(exits, key=_exit_order))
    undeclared, checks = p.undeclared, p.exit_checks
    for x in exits:
        if x.reason is None and x.source == "sensor":  # unclassified: judged by this rule alone
            if undeclared is not None:
                finding = undeclared(x, session, end)
                if finding is not None:
                    add(finding)
            continue
        for check in checks:
            finding = check(x, session, end)
            if finding is not None:
                add(finding)


def _judge_concerns(
    session: Session, concerns: tuple[Concern, ...], check: ConcernCheck, add: Add
) -> None:
    if len(concerns) > 1:
        concerns = tuple(sorted(concerns, key=_concern_order))
    for c in concerns:
        finding = check(c, session)
        if finding is not None:
            add(finding)


def _exit_order(x: Exit) -> tuple[Instant, str]:
    return x.left_at, x.id


def _concern_order(c: Concern) -> tuple[Instant, str]:
    return c.raised_at, c.id
