"""What the supervisor's overview reads: the practice's open client concerns, its recent exits
that need attention, the findings of the last week with their review state (the queue a
supervisor acknowledges, assigns and resolves) and (for billing) its sessions whose billed
codes the minutes do not match. Bounded: recent records only, long lists cut."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from stepout.domain.accounts import User
from stepout.domain.billing import BillingLine
from stepout.domain.instants import MICROS_PER_DAY, day_bounds
from stepout.domain.permissions import allowed, sees_only_own_sessions
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.reviews import STATES
from stepout.services.ports import AccountsUnitOfWork, Selection
from stepout.services.reporting import run_audit, run_billing
from stepout.services.reviews import Reviewed, therapists, with_reviews
from stepout.web.pages.checklist import Missing, missing
from stepout.web.pages.common import today_in
from stepout.web.state import AppState

WINDOW_DAYS: Final = 30  # concerns and exits
FINDINGS_DAYS: Final = 7
MAX_LISTED: Final = 100


@dataclass(frozen=True, slots=True)
class ExitItem:
    exit: Exit
    session: Session
    missing: list[Missing]


@dataclass
class Overview:
    concerns: list[tuple[Concern, Session]] = field(default_factory=list)
    exits: list[ExitItem] = field(default_factory=list)
    findings: Counter[tuple[str, str]] = field(default_factory=Counter)
    billing: list[BillingLine] = field(default_factory=list)
    queue: list[Reviewed] = field(default_factory=list)  # the findings, unresolved first
    therapists: list[User] = field(default_factory=list)  # whom a finding can be assigned to
    findings_from: str = ""  # the first day of the findings' period (ISO date)
    cut: bool = False  # a list was longer than MAX_LISTED

    @property
    def violations(self) -> int:
        return sum(n for (_, severity), n in self.findings.items() if severity == "violation")

    @property
    def warnings(self) -> int:
        return sum(self.findings.values()) - self.violations


def _take(overview: Overview, s: Session, exits: list[Exit]) -> None:
    for x in exits:
        gaps = missing(x)
        if x.signed_at is None or gaps:
            overview.exits.append(ExitItem(x, s, gaps))


def _live_sessions(uow: AccountsUnitOfWork, user: User, since: int, until: int) -> list[Session]:
    """The practice's sessions still in progress (the bundles hold only ended sessions)."""
    started = uow.records.sessions_of_practice(user.practice, since, until)
    return [s for s in started if s.in_progress]


def read_overview(state: AppState, user: User, zone: str) -> Overview:
    now = state.now()
    today = today_in(zone, now)
    recent = Selection(practice=user.practice, date_from=today - timedelta(days=WINDOW_DAYS))
    week = Selection(practice=user.practice, date_from=today - timedelta(days=FINDINGS_DAYS))
    overview = Overview()
    own_only = sees_only_own_sessions(user)  # a therapist: their own exits and findings
    with state.db.uow(read_only=True) as uow:
        records = uow.records
        bundles, _ = records.bundles_to_judge(recent, None, count_therapists=False)
        for b in bundles:
            _take(overview, b.session, list(b.exits))
        since = day_bounds(recent.date_from or today, zone)[0]
        for s in _live_sessions(uow, user, since - MICROS_PER_DAY, now + 1):
            _take(overview, s, records.exits_of_session(s.id))
        if allowed(user, "concerns.read"):
            # Every open concern, however old: each must be acknowledged.
            concerns = records.open_concerns(user.practice, MAX_LISTED + 1)
            sessions = records.sessions({c.session for c in concerns})
            overview.concerns = [(c, sessions[c.session]) for c in concerns]
        if allowed(user, "findings.read"):
            found = run_audit(records, week, state.policy, now)
            for f in found:
                if own_only and f.therapist != user.id:
                    continue
                overview.findings[(f.rule, f.severity)] += 1
            queue = with_reviews(uow.reviews, user.practice, found)
            if own_only:  # their own findings, and those assigned to them
                queue = [r for r in queue if user.id in (r.finding.therapist, r.review.assignee)]
            overview.queue = sorted(
                queue,
                key=lambda r: (STATES.index(r.review.state), r.finding.severity != "violation"),
            )
            overview.findings_from = (week.date_from or today).isoformat()
        if allowed(user, "finding.review"):
            overview.therapists = therapists(uow, user.practice)
        if allowed(user, "billing.read"):
            lines = run_billing(records, week, {"unsupported", "undercoded"})
            overview.billing = [line for _, line in zip(range(MAX_LISTED), lines, strict=False)]
    if own_only:
        overview.exits = [i for i in overview.exits if i.session.therapist == user.id]
    overview.exits.sort(key=lambda item: (-item.exit.left_at, item.exit.id))
    overview.cut = (
        len(overview.concerns) > MAX_LISTED
        or len(overview.exits) > MAX_LISTED
        or len(overview.queue) > MAX_LISTED
    )
    overview.queue = overview.queue[:MAX_LISTED]
    overview.concerns = overview.concerns[:MAX_LISTED]
    overview.exits = overview.exits[:MAX_LISTED]
    return overview
