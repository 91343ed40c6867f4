"""The rules that judge one exit at a time.

Each builder reads its settings once and returns an `ExitCheck`. The engine runs them, in
RULE_IDS order, on every classified exit; an unclassified sensor exit (no reason) is judged
by `undeclared_exit` alone.
"""

from collections.abc import Callable
from typing import Final

from stepout.domain.facetime import exit_duration
from stepout.domain.instants import MICROS_PER_HOUR, MICROS_PER_MINUTE, Instant
from stepout.domain.records import Exit, Session
from stepout.policy.findings import Finding, Severity
from stepout.policy.model import Policy
from stepout.policy.rules import (
    SAFEGUARD_WORDS,
    ExitCheck,
    exit_words,
    join_words,
    number,
    reason_words,
    span,
    to_micros,
)

RECORDED_EMS: Final = frozenset({"called", "not_needed"})


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def reason_not_exceptional(policy: Policy, as_of: Instant) -> ExitCheck:
    cfg, version = policy.rules.reason_not_exceptional, policy.version
    allowed, severity = frozenset(cfg.allowed_reasons), cfg.severity
    allowed_words = join_words(reason_words(r) for r in cfg.allowed_reasons)
    if allowed_words:
        rule = f"the policy allows exits only for {allowed_words} reasons"
    else:
        rule = "the policy allows no exits"

    def check(x: Exit, s: Session, end: Instant) -> Finding | None:
        reason = x.reason
        if reason in allowed:
            return None
        if reason is None:
            message = f"Exit declared without a reason; {rule}."
        else:
            message = f"{exit_words(reason)}; {rule}."
        return Finding(
            "reason-not-exceptional", severity, s.id, x.id, s.therapist, message, version
        )

    return check


def client_not_informed(policy: Policy, as_of: Instant) -> ExitCheck:
    cfg, version = policy.rules.client_not_informed, policy.version
    severity = cfg.severity
    before = frozenset((*cfg.before_leaving_reasons, None))  # no reason: the strictest

    def check(x: Exit, s: Session, end: Instant) -> Finding | None:
        informed = x.client_informed
        if informed == "not_informed":
            message = "The client was not told why the therapist left."
        elif _blank(x.explanation):
            message = "No words said to the client were recorded for this exit."
        elif informed == "after_return" and x.reason in before:
            message = (
                f"The client was told only after the return; a {reason_words(x.reason)} exit "
                "must be explained before leaving."
            )
        else:
            return None
        return Finding("client-not-informed", severity, s.id, x.id, s.therapist, message, version)

    return check


def absence_too_long(policy: Policy, as_of: Instant) -> ExitCheck:
    cfg, version = policy.rules.absence_too_long, policy.version
    severity = cfg.severity
    limits: dict[str | None, int] = {
        r: to_micros(m, MICROS_PER_MINUTE) for r, m in cfg.limit_minutes.items()
    }
    words: dict[str | None, str] = {r: number(m) for r, m in cfg.limit_minutes.items()}

    def check(x: Exit, s: Session, end: Instant) -> Finding | None:
        limit = limits.get(x.reason)  # None: no limit
        if limit is None:
            return None
        lasted = exit_duration(x.left_at, x.returned_at, end)
        if lasted <= limit:
            return None
        open_ = (
            " (no return recorded: counted to the session's end)" if x.returned_at is None else ""
        )
        message = (
            f"{exit_words(x.reason)} lasted {span(lasted)}{open_}; "
            f"the policy allows {words[x.reason]} min."
        )
        return Finding("absence-too-long", severity, s.id, x.id, s.therapist, message, version)

    return check


def confidentiality_incomplete(policy: Policy, as_of: Instant) -> ExitCheck:
    cfg, version = policy.rules.confidentiality_incomplete, policy.version
    severity, required = cfg.severity, cfg.required_safeguards
    required_set = frozenset(required)
    wanted = join_words(SAFEGUARD_WORDS[g] for g in required)

    def check(x: Exit, s: Session, end: Instant) -> Finding | None:
        if required_set <= x.safeguards:
            return None
        missing = [SAFEGUARD_WORDS[g] for g in required if g not in x.safeguards]
        message = f"Safeguards not confirmed: {join_words(missing)}; the policy requires {wanted}."
        return Finding(
            "confidentiality-incomplete", severity, s.id, x.id, s.therapist, message, version
        )

    return check


def client_unattended(policy: Policy, as_of: Instant) -> ExitCheck:
    cfg, version = policy.rules.client_unattended, policy.version
    by_reason: dict[str | None, Severity] = {}
    by_reason.update(cfg.severity_by_reason.items())

    def check(x: Exit, s: Session, end: Instant) -> Finding | None:
        severity = by_reason.get(x.reason)
        if severity is None or not _blank(x.client_attended_by):
            return None
        message = f"{exit_words(x.reason)} with no one recorded as staying with the client."
        return Finding("client-unattended", severity, s.id, x.id, s.therapist, message, version)

    return check


def ems_decision_missing(policy: Policy, as_of: Instant) -> ExitCheck:
    cfg, version = policy.rules.ems_decision_missing, policy.version
    severity, reasons = cfg.severity, frozenset(cfg.reasons)

    def check(x: Exit, s: Session, end: Instant) -> Finding | None:
        if x.reason not in reasons or x.ems in RECORDED_EMS:
            return None
        message = (
            f"{exit_words(x.reason)} with no decision on emergency services recorded "
            "(called or not needed)."
        )
        return Finding("ems-decision-missing", severity, s.id, x.id, s.therapist, message, version)

    return check


def no_check_in(policy: Policy, as_of: Instant) -> ExitCheck:
    severity, version = policy.rules.no_check_in.severity, policy.version

    def check(x: Exit, s: Session, end: Instant) -> Finding | None:
        if x.checked_in is True:
            return None
        message = "No check-in with the client was recorded after the exit."
        return Finding("no-check-in", severity, s.id, x.id, s.therapist, message, version)

    return check


def documentation_late(policy: Policy, as_of: Instant) -> ExitCheck:
    cfg, version = policy.rules.documentation_late, policy.version
    severity, allowed = cfg.severity, to_micros(cfg.hours, MICROS_PER_HOUR)
    rule = f"the policy requires signing within {number(cfg.hours)} h of the session's end"

    def check(x: Exit, s: Session, end: Instant) -> Finding | None:
        deadline = end + allowed
        signed = x.signed_at
        if signed is not None and signed <= as_of:  # signed (as of the audit)
            if signed <= deadline:
                return None
            message = f"Exit signed {span(signed - end)} after the session ended; {rule}."
        elif as_of <= deadline:
            return None
        else:
            message = f"Exit not signed {span(as_of - end)} after the session ended; {rule}."
        return Finding("documentation-late", severity, s.id, x.id, s.therapist, message, version)

    return check


def undeclared_exit(policy: Policy, as_of: Instant) -> ExitCheck:
    severity, version = policy.rules.undeclared_exit.severity, policy.version

    def check(x: Exit, s: Session, end: Instant) -> Finding | None:
        lasted = exit_duration(x.left_at, x.returned_at, end)
        open_ = " (no return recorded)" if x.returned_at is None else ""
        message = (
            f"A sensor detected an absence of {span(lasted)}{open_} that nobody declared; "
            "it needs a reason."
        )
        return Finding("undeclared-exit", severity, s.id, x.id, s.therapist, message, version)

    return check


# The checks of a classified exit, in RULE_IDS order.
EXIT_RULES: Final[dict[str, Callable[[Policy, Instant], ExitCheck]]] = {
    "reason-not-exceptional": reason_not_exceptional,
    "client-not-informed": client_not_informed,
    "absence-too-long": absence_too_long,
    "confidentiality-incomplete": confidentiality_incomplete,
    "client-unattended": client_unattended,
    "ems-decision-missing": ems_decision_missing,
    "no-check-in": no_check_in,
    "documentation-late": documentation_late,
}
