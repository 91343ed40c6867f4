"""The typed settings of each rule, as read from a policy file.

These are (pydantic-validated) frozen dataclasses; attribute names are the TOML keys, and a
rule's settings live under its id with underscores (`rules.absence_too_long`).
"""

from typing import Annotated, Final

from pydantic import ConfigDict, Field, Strict
from pydantic.dataclasses import dataclass as settings

from stepout.domain.vocabulary import Reason, Safeguard
from stepout.policy.findings import Severity

RULE_IDS: Final[tuple[str, ...]] = (
    "reason-not-exceptional",
    "client-not-informed",
    "absence-too-long",
    "confidentiality-incomplete",
    "client-unattended",
    "ems-decision-missing",
    "no-check-in",
    "documentation-late",
    "repeated-exits",
    "exit-rate-high",
    "undeclared-exit",
    "billed-code-unsupported",
    "concern-unacknowledged",
)

CONFIG = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

Text = Annotated[str, Strict(), Field(pattern=r"\S")]
Flag = Annotated[bool, Strict()]
Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Share = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
Count = Annotated[int, Strict(), Field(ge=0)]
PositiveCount = Annotated[int, Strict(), Field(ge=1)]


@settings(frozen=True, config=CONFIG)
class Toggle:
    """A rule with no parameters."""

    enabled: Flag
    severity: Severity


@settings(frozen=True, config=CONFIG)
class ReasonSettings:
    enabled: Flag
    severity: Severity
    allowed_reasons: tuple[Reason, ...]


@settings(frozen=True, config=CONFIG)
class InformedSettings:
    enabled: Flag
    severity: Severity
    before_leaving_reasons: tuple[Reason, ...]


@settings(frozen=True, config=CONFIG)
class AbsenceSettings:
    enabled: Flag
    severity: Severity
    limit_minutes: dict[Reason, Positive]  # a reason not listed has no limit


@settings(frozen=True, config=CONFIG)
class SafeguardSettings:
    enabled: Flag
    severity: Severity
    required_safeguards: tuple[Safeguard, ...]


@settings(frozen=True, config=CONFIG)
class UnattendedSettings:
    enabled: Flag
    severity_by_reason: dict[Reason, Severity]  # a reason not listed needs no attendant


@settings(frozen=True, config=CONFIG)
class EmsSettings:
    enabled: Flag
    severity: Severity
    reasons: tuple[Reason, ...]


@settings(frozen=True, config=CONFIG)
class DocumentationSettings:
    enabled: Flag
    severity: Severity
    hours: Positive


@settings(frozen=True, config=CONFIG)
class RepeatedSettings:
    enabled: Flag
    severity: Severity
    max_exits_per_session: Count


@settings(frozen=True, config=CONFIG)
class ExitRateSettings:
    enabled: Flag
    severity: Severity
    min_sessions: PositiveCount
    max_share: Share


@settings(frozen=True, config=CONFIG)
class ConcernSettings:
    enabled: Flag
    severity: Severity
    days: Positive


RuleSettings = (
    Toggle
    | ReasonSettings
    | InformedSettings
    | AbsenceSettings
    | SafeguardSettings
    | UnattendedSettings
    | EmsSettings
    | DocumentationSettings
    | RepeatedSettings
    | ExitRateSettings
    | ConcernSettings
)


@settings(frozen=True, config=CONFIG)
class Rules:
    """One settings object per rule; attribute names are the rule ids with underscores."""

    reason_not_exceptional: ReasonSettings = Field(alias="reason-not-exceptional")
    client_not_informed: InformedSettings = Field(alias="client-not-informed")
    absence_too_long: AbsenceSettings = Field(alias="absence-too-long")
    confidentiality_incomplete: SafeguardSettings = Field(alias="confidentiality-incomplete")
    client_unattended: UnattendedSettings = Field(alias="client-unattended")
    ems_decision_missing: EmsSettings = Field(alias="ems-decision-missing")
    no_check_in: Toggle = Field(alias="no-check-in")
    documentation_late: DocumentationSettings = Field(alias="documentation-late")
    repeated_exits: RepeatedSettings = Field(alias="repeated-exits")
    exit_rate_high: ExitRateSettings = Field(alias="exit-rate-high")
    undeclared_exit: Toggle = Field(alias="undeclared-exit")
    billed_code_unsupported: Toggle = Field(alias="billed-code-unsupported")
    concern_unacknowledged: ConcernSettings = Field(alias="concern-unacknowledged")
