"""The rules that judge a whole session, a concern, or a therapist's rate of exits."""

from collections.abc import Mapping, Sequence
from fractions import Fraction

from stepout.domain.billing import (
    CRISIS_FIRST_UNIT_MINUTES,
    CRISIS_PRIMARY,
    CRISIS_PRIMARY_MINUTES,
    CRISIS_UNIT,
    CRISIS_UNIT_STEP_MINUTES,
    PSYCHOTHERAPY,
    WITH_EM,
    unsupported_codes,
)
from stepout.domain.facetime import gross_minutes, net_minutes
from stepout.domain.instants import MICROS_PER_DAY, Instant
from stepout.domain.records import Concern, Exit, Session
from stepout.policy.findings import Finding
from stepout.policy.model import Policy
from stepout.policy.rules import (
    ConcernCheck,
    RateCheck,
    SessionCheck,
    join_words,
    number,
    plural,
    span,
    to_micros,
)

# Net minutes each code needs, for the message (the judgement is `unsupported_codes`').
_MINIMUM = {code: m for m, code in (*PSYCHOTHERAPY, *WITH_EM)} | {
    CRISIS_PRIMARY: CRISIS_PRIMARY_MINUTES
}


def repeated_exits(policy: Policy, as_of: Instant) -> SessionCheck:
    cfg, version = policy.rules.repeated_exits, policy.version
    severity, most = cfg.severity, cfg.max_exits_per_session

    def check(s: Session, end: Instant, exits: Sequence[Exit]) -> Finding | None:
        if len(exits) <= most:
            return None
        message = (
            f"{plural(len(exits), 'exit')} in one session; "
            f"the policy allows at most {number(most)}."
        )
        return Finding("repeated-exits", severity, s.id, None, s.therapist, message, version)

    return check


def billed_code_unsupported(policy: Policy, as_of: Instant) -> SessionCheck:
    severity, version = policy.rules.billed_code_unsupported.severity, policy.version
    # billed codes -> the fewest net minutes that support them all. Few distinct billed
    # tuples recur across millions of sessions, so most sessions cost one lookup.
    enough: dict[tuple[str, ...], int] = {}

    def check(s: Session, end: Instant, exits: Sequence[Exit]) -> Finding | None:
        billed = s.billed_codes
        if not billed:
            return None
        if exits:
            net = net_minutes(s.start, end, [(x.left_at, x.returned_at) for x in exits])
        else:
            net = gross_minutes(s.start, end)  # no exit: net is gross
        least = enough.get(billed)
        if least is None:
            least = enough[billed] = minutes_supporting(billed)
        if net >= least:
            return None
        message = (
            f"Billed {_needs(billed, unsupported_codes(billed, net))} of face-to-face time; "
            f"the session had {net} min net of exits."
        )
        return Finding(
            "billed-code-unsupported", severity, s.id, None, s.therapist, message, version
        )

    return check


def minutes_supporting(billed: Sequence[str]) -> int:
    """The fewest net minutes with no billed code unsupported (`unsupported_codes` shrinks as
    the minutes grow, so a binary search over it finds them)."""
    low, high = 0, 1
    while unsupported_codes(billed, high):
        low, high = high, high * 2
    while low < high:
        middle = (low + high) // 2
        if unsupported_codes(billed, middle):
            low = middle + 1
        else:
            high = middle
    return low


def _needs(billed: Sequence[str], short: Sequence[str]) -> str:
    """ "90837 needs at least 53 min", "90834 needs at least 38 min and 90840 (unit 2) at least
    105 min": what each short code needs."""
    # Unit minimums grow with the unit, so the short 90840 units are the last ones billed.
    unit = sum(1 for code in billed if code == CRISIS_UNIT) - short.count(CRISIS_UNIT)
    parts: list[str] = []
    seen: set[str] = set()
    for code in short:
        if code == CRISIS_UNIT:
            unit += 1
            minimum = CRISIS_FIRST_UNIT_MINUTES + CRISIS_UNIT_STEP_MINUTES * (unit - 1)
            label = f"{code} (unit {unit})"
        elif code in seen:
            continue
        else:
            seen.add(code)
            minimum, label = _MINIMUM[code], code
        parts.append(f"{label} {'at least' if parts else 'needs at least'} {minimum} min")
    return join_words(parts)


def concern_unacknowledged(policy: Policy, as_of: Instant) -> ConcernCheck:
    cfg, version = policy.rules.concern_unacknowledged, policy.version
    severity, allowed = cfg.severity, to_micros(cfg.days, MICROS_PER_DAY)
    rule = f"the policy requires acknowledging within {plural(cfg.days, 'day')}"

    def check(c: Concern, s: Session) -> Finding | None:
        deadline = c.raised_at + allowed
        acknowledged = c.acknowledged_at
        if acknowledged is not None and acknowledged <= as_of:
            if acknowledged <= deadline:
                return None
            taken = span(acknowledged - c.raised_at)
            message = f"A client concern was acknowledged {taken} after it was raised; {rule}."
        elif as_of <= deadline:
            return None
        else:
            waiting = span(as_of - c.raised_at)
            message = (
                f"A client concern has not been acknowledged {waiting} after it was raised; {rule}."
            )
        return Finding(
            "concern-unacknowledged", severity, s.id, None, s.therapist, message, version
        )

    return check


def exit_rate_high(policy: Policy, as_of: Instant) -> RateCheck:
    cfg, version = policy.rules.exit_rate_high, policy.version
    severity, least = cfg.severity, cfg.min_sessions
    # The share as written (0.05 is exactly 1/20), compared in integers.
    most = Fraction(repr(cfg.max_share))
    num, den = most.numerator, most.denominator
    most_words = f"{number(cfg.max_share * 100)} %"

    def check(sessions: Mapping[str, int], with_exits: Mapping[str, int]) -> list[Finding]:
        findings: list[Finding] = []
        for therapist in sorted(sessions):
            total, left = sessions[therapist], with_exits.get(therapist, 0)
            if total < least or left * den <= num * total:
                continue
            message = (
                f"The therapist left during {left} of {total} sessions "
                f"({number(round(100 * left / total, 1))} %); "
                f"the policy allows at most {most_words}."
            )
            findings.append(
                Finding("exit-rate-high", severity, None, None, therapist, message, version)
            )
        return findings

    return check
