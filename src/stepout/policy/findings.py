"""A finding: one rule's verdict on one session, exit, concern or therapist."""

from dataclasses import dataclass
from typing import Literal

Severity = Literal["violation", "warning"]
SEVERITIES: tuple[Severity, ...] = ("violation", "warning")


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # a rule id (see `stepout.policy.model.RULE_IDS`)
    severity: Severity
    session: str | None  # None for a finding about a therapist (exit-rate-high)
    exit: str | None  # None for a finding about a session, concern or therapist
    therapist: str | None
    message: str  # plain language with numbers; never free text from the record
    policy_version: str

    def as_dict(self) -> dict[str, str | None]:
        """The finding as in `stepout audit --format json`."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "session": self.session,
            "exit": self.exit,
            "therapist": self.therapist,
            "message": self.message,
            "policy_version": self.policy_version,
        }
