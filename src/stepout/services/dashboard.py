"""The supervisor's dashboard: its figures, as plain frozen dataclasses of rows.

The contract between storage (`stepout.adapters.db.dashboard.SqlDashboard`, SQL aggregates)
and the charts (`stepout.adapters.reports`). Every figure covers one practice (the tenant), the
ended sessions that started within the period (dates read in the practice's time zone, both
ends inclusive), optionally narrowed to a therapist and a room. How the filter's other
fields narrow each figure:

- `reason` narrows the exits counted (exits by week, absences, `sessions_with_exits`,
  `Totals.exits`) and, for billing, the sessions: only those with an exit of that reason.
  Session totals and each therapist's `sessions` stay every session (the share's denominator).
- `status` (a billing status) narrows `billing_by_week` and `sessions_of` (the drill-down
  behind a billing bar).

Reasons are `technical`, `client_safety`, `health_emergency`, `other`, and `unclassified` for a
sensor exit nobody classified (`UNCLASSIFIED`). Weeks are ISO weeks (Monday to Sunday) in the
practice's time zone, named by their Monday. An absence lasts from leaving to returning; an
exit that never returned lasts to its session's end (`stepout.domain.facetime.exit_duration`,
as `absence-too-long` judges it). Billing status is `stepout.domain.billing`'s, per session.

Findings by rule and severity come from the policy engine (Python), through the findings
store (`stepout.adapters.db.findings_store`: the practice's last audit run, refreshed when the
ledger moves on): `FindingsByWeek`, set on the dashboard by the page and the report.
`therapist`, `room` and the period narrow it as the rest; `reason` keeps only findings about
an exit of that reason.

Reading the dashboard reads health data in aggregate: the caller records it in the audit trail
(`dashboard.read`, target the period).
"""

from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Final, Literal, Protocol

from stepout.domain.billing import BillingStatus
from stepout.domain.instants import Instant
from stepout.policy.model import Policy

UNCLASSIFIED: Final = "unclassified"
REASONS: Final = ("technical", "client_safety", "health_emergency", "other", UNCLASSIFIED)
STATUSES: Final[tuple[BillingStatus, ...]] = (
    "supported",
    "undercoded",
    "unsupported",
    "not_billed",
)
# Histogram bins of absence lengths, in whole minutes: [0, 1), [1, 2), [2, 3), [3, 5), ...,
# [60, None). The policy's limits (technical 5, client_safety 15) fall on edges.
ABSENCE_EDGES: Final = (0, 1, 2, 3, 5, 10, 15, 20, 30, 60)

Reason = Literal["technical", "client_safety", "health_emergency", "other", "unclassified"]


@dataclass(frozen=True, slots=True)
class DashboardFilter:
    practice: str
    date_from: date  # inclusive, in the practice's time zone
    date_to: date  # inclusive
    therapist: str | None = None
    room: str | None = None
    reason: str | None = None  # one of REASONS
    status: BillingStatus | None = None  # drill-down only (see the module's table)

    def __post_init__(self) -> None:
        if self.date_to < self.date_from:
            raise ValueError("the period ends before it starts")
        if self.reason is not None and self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}")
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"unknown billing status {self.status!r}")


@dataclass(frozen=True, slots=True)
class ExitRateThreshold:
    """Policy `exit-rate-high`: a therapist with at least `min_sessions` sessions who left in
    more than `max_share` of them (0.05 is 5 %)."""

    enabled: bool
    min_sessions: int
    max_share: float
    policy_version: str

    @classmethod
    def of(cls, policy: Policy) -> "ExitRateThreshold":
        cfg = policy.rules.exit_rate_high
        return cls(bool(cfg.enabled), int(cfg.min_sessions), float(cfg.max_share), policy.version)

    def exceeded(self, sessions: int, with_exits: int) -> bool:
        """As the rule judges it: exact, in integers (0.05 is exactly 1/20)."""
        if not self.enabled or sessions < self.min_sessions:
            return False
        most = Fraction(repr(self.max_share))
        return with_exits * most.denominator > most.numerator * sessions


@dataclass(frozen=True, slots=True)
class WeekReasonCount:
    """Exits of one reason that left in one week (by their session's start week)."""

    week: date  # the Monday
    reason: str
    exits: int


@dataclass(frozen=True, slots=True)
class TherapistShare:
    therapist: str
    sessions: int
    sessions_with_exits: int
    share: float  # sessions_with_exits / sessions (0.0 with no session)
    above_threshold: bool  # what `exit-rate-high` would say over this period


@dataclass(frozen=True, slots=True)
class AbsenceSummary:
    """Absence lengths of one reason's exits, in minutes (fractions kept): min, quartiles
    (nearest rank: the value at rank ceil(q * n)), max, mean."""

    reason: str
    exits: int
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    mean: float


@dataclass(frozen=True, slots=True)
class AbsenceBin:
    """Exits of one reason whose absence lasted [lower, upper) minutes (upper None: no bound)."""

    reason: str
    lower: int
    upper: int | None
    exits: int


@dataclass(frozen=True, slots=True)
class WeekStatusCount:
    week: date
    status: str  # one of STATUSES
    sessions: int


@dataclass(frozen=True, slots=True)
class WeekRuleCount:
    """Findings of one rule and severity about sessions that started in one week."""

    week: date  # the Monday
    rule: str
    severity: str  # violation, warning
    findings: int


@dataclass(frozen=True, slots=True)
class FindingsByWeek:
    """The findings chart's figures, from a stored audit run of the practice."""

    counts: tuple[WeekRuleCount, ...]  # by week, then rule, then severity
    computed: Instant  # the run's as-of instant
    policy_version: str
    about_therapists: int = 0  # findings with no session (exit-rate-high): not in the chart
    pending: str | None = None  # why the run shown is out of date (a new one is under way)


@dataclass(frozen=True, slots=True)
class Totals:
    sessions: int  # ended sessions in the period (therapist/room filters applied)
    sessions_with_exits: int
    exits: int
    therapists: int  # distinct therapists with a session


@dataclass(frozen=True, slots=True)
class SessionLine:
    """One session behind a bar or point (drill-down): ids, times and figures, no free text."""

    session: str
    therapist: str
    room: str
    start: Instant
    end: Instant
    exits: int
    net_minutes: int
    status: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    filter: DashboardFilter
    timezone: str
    threshold: ExitRateThreshold
    totals: Totals
    exits_by_week: tuple[WeekReasonCount, ...]  # by week, then reason (REASONS order)
    therapists: tuple[TherapistShare, ...]  # by therapist id
    absences: tuple[AbsenceSummary, ...]  # REASONS order, reasons with exits only
    absence_bins: tuple[AbsenceBin, ...]  # REASONS order then lower; only non-empty bins
    billing_by_week: tuple[WeekStatusCount, ...]  # by week, then STATUSES order
    notes: tuple[str, ...] = field(default=())  # approximations made, if any (empty: exact)
    findings: FindingsByWeek | None = None  # set from the findings store (None: not read)


class DashboardQueries(Protocol):
    def dashboard(self, filter_: DashboardFilter, threshold: ExitRateThreshold) -> Dashboard:
        """Every figure for the filter, computed in the database."""

    def sessions_of(self, filter_: DashboardFilter, limit: int = 200) -> list[SessionLine]:
        """The sessions behind a figure (set the filter to the bar: period = its week,
        therapist, reason, status), by start then id, at most `limit`."""


def build_dashboard(
    queries: DashboardQueries, filter_: DashboardFilter, policy: Policy
) -> Dashboard:
    """The dashboard under `policy`'s threshold. On SQL storage:
    `build_dashboard(SqlDashboard(uow.connection), filter_, policy)` in a read-only unit of
    work whose tenant scope covers `filter_.practice`."""
    return queries.dashboard(filter_, ExitRateThreshold.of(policy))
