"""The findings store: each practice's last audit, kept in two tables (migration 0011).

The rules are Python (`stepout.policy`), so findings cannot be grouped in SQL unless an audit
writes them down. An *audit run* judges every session of one practice (exactly as `stepout
audit` with no filter judges that practice), and stores its findings (`findings`, one row
each, with the key of its review, its session's start, week, room and exit reason) and what
it saw (`finding_runs`: the policy's name, version and a digest of its settings, the
practice's time zone, the as-of instant, the last ledger entry, and `valid_until`: the
first instant after as-of at which a time limit passes, so that a finding may appear).

A run is **stale**, and `refresh` replaces it, when: there is none; the policy or the time
zone differs; a time limit has passed since (`valid_until`); or the ledger holds an entry of
the practice after the run's, other than a review step (`finding.*`: the review state is not
in the store, `finding_reviews` keeps it). Otherwise the stored findings are the ones an
audit would find now, with the same keys (a message that counts hours, "not signed 30 h
after ...", reads as of the run).

Findings about a therapist (`exit-rate-high`) depend on the period judged; the store holds
them over the whole history, with no session and no week: the weekly chart leaves them out
and says how many there are.

Not a projection: `stepout rebuild` leaves the store alone (the ledger it replays is the same,
so the run is still current), and `stepout verify` checks that its two tables agree
(`row_counts`).
"""

import contextvars
import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, delete, func, insert, select

from stepout.adapters.db.tables import (
    EventRow,
    FindingReviewRow,
    FindingRunRow,
    StoredFindingRow,
)
from stepout.adapters.db.uow import SqlUnitOfWork
from stepout.domain.billing import minimum_net_minutes
from stepout.domain.bundle import SessionBundle
from stepout.domain.instants import Instant, day_bounds, to_datetime
from stepout.domain.reviews import finding_key
from stepout.policy.engine import active_rules, audit
from stepout.policy.findings import Finding
from stepout.policy.model import Policy, describe
from stepout.policy.rules import to_micros
from stepout.services.dashboard import (
    UNCLASSIFIED,
    DashboardFilter,
    FindingsByWeek,
    WeekRuleCount,
)
from stepout.services.ports import Records, Selection

if TYPE_CHECKING:
    from stepout.adapters.db import Database
    from stepout.services.reviews import ReviewsUnitOfWork

R: Final = FindingRunRow.__table__.c
F: Final = StoredFindingRow.__table__.c
E: Final = EventRow.__table__.c
V: Final = FindingReviewRow.__table__.c
COLUMNS: Final = (
    "practice", "n", "key", "rule", "severity", "session", "exit", "therapist", "room",
    "reason", "start_us", "week", "message",
)  # fmt: skip
CHUNK: Final = 2_000
log = logging.getLogger(__name__)
MICROS_PER_HOUR: Final = 3_600_000_000
MICROS_PER_DAY: Final = 24 * MICROS_PER_HOUR


@dataclass(frozen=True, slots=True)
class AuditRun:
    """What a stored run saw (a row of `finding_runs`)."""

    practice: str
    policy_name: str
    policy_version: str
    policy_digest: str
    timezone: str
    as_of: Instant
    ledger_seq: int
    valid_until: Instant | None
    computed: Instant
    findings: int


@dataclass(frozen=True, slots=True)
class Judged:
    """A run's result before it is stored: its findings in the audit's order, with the
    records' details the chart groups by (`rows`)."""

    findings: list[Finding]
    rows: list[tuple[Any, ...]]  # COLUMNS
    valid_until: Instant | None


def policy_digest(policy: Policy) -> str:
    """SHA-256 of the policy's effective settings: another file with the same version but
    other limits is another policy for the store."""
    return hashlib.sha256(orjson.dumps(describe(policy), option=orjson.OPT_SORT_KEYS)).hexdigest()


def monday_of(instant: Instant, zone: ZoneInfo) -> date:
    day = to_datetime(instant).astimezone(zone).date()
    return day - timedelta(days=day.weekday())


class _Watch:
    """Reads the bundles as the audit consumes them: keeps each session's start and room and
    each exit's reason (for the rows), and the first time limit still to pass after `as_of`."""

    def __init__(self, policy: Policy, as_of: Instant) -> None:
        rules = policy.rules
        self.as_of = as_of
        late = rules.documentation_late
        self.sign_within = to_micros(late.hours, MICROS_PER_HOUR) if late.enabled else None
        concern = rules.concern_unacknowledged
        self.ack_within = to_micros(concern.days, MICROS_PER_DAY) if concern.enabled else None
        self.sessions: dict[str, tuple[Instant, str]] = {}
        self.reasons: dict[str, str] = {}
        self.next_limit: Instant | None = None

    def _limit(self, at: Instant) -> None:
        if at >= self.as_of and (self.next_limit is None or at < self.next_limit):
            self.next_limit = at

    def __call__(self, bundles: Iterable[SessionBundle]) -> Iterator[SessionBundle]:
        as_of = self.as_of
        for bundle in bundles:
            s = bundle.session
            self.sessions[s.id] = (s.start, s.room)
            for x in bundle.exits:
                self.reasons[x.id] = x.reason or UNCLASSIFIED
                if self.sign_within is not None and s.end is not None:
                    if x.signed_at is None or x.signed_at > as_of:
                        self._limit(s.end + self.sign_within)
                    if x.signed_at is not None and x.signed_at > as_of:
                        self._limit(x.signed_at)
            if self.ack_within is not None and s.end is not None:
                for c in bundle.concerns:
                    if c.acknowledged_at is None or c.acknowledged_at > as_of:
                        self._limit(c.raised_at + self.ack_within)
                    if c.acknowledged_at is not None and c.acknowledged_at > as_of:
                        self._limit(c.acknowledged_at)
            yield bundle


def judge(
    records: Records,
    practice: str,
    zone: str,
    policy: Policy,
    as_of: Instant,
    period: tuple[date, date] | None = None,
) -> Judged:
    """Audit every session of `practice` at `as_of` (as `services.reporting.run_audit` over
    `Selection(practice=practice)`: the same findings in the same order), or only those that
    started within `period` (a finding about a session does not depend on the others; one
    about a therapist's exit rate is then over the period)."""
    active = active_rules(policy)
    floor = minimum_net_minutes if "billed-code-unsupported" in active else None
    first, last = period if period is not None else (None, None)
    bundles, counts = records.bundles_to_judge(
        Selection(first, last, practice), floor, count_therapists="exit-rate-high" in active
    )
    watch = _Watch(policy, as_of)
    findings = audit(watch(bundles), policy, as_of, active, therapist_counts=counts)
    tz = ZoneInfo(zone)
    rows: list[tuple[Any, ...]] = []
    for n, f in enumerate(findings):
        start: Instant | None = None
        room: str | None = None
        week: str | None = None
        if f.session is not None and f.session in watch.sessions:
            start, room = watch.sessions[f.session]
            week = monday_of(start, tz).isoformat()
        reason = watch.reasons.get(f.exit) if f.exit is not None else None
        key = finding_key(practice, f)
        row = (practice, n, key, f.rule, f.severity, f.session, f.exit, f.therapist)
        rows.append((*row, room, reason, start, week, f.message))
    return Judged(findings, rows, watch.next_limit)


def _run_of(row: Sequence[Any]) -> AuditRun:
    return AuditRun(*row)


def _finding_of(row: Sequence[Any], version: str) -> Finding:
    rule, severity, session, exit_, therapist, message = row
    return Finding(rule, severity, session, exit_, therapist, message, version)


class FindingsStore:
    """The store's reads and writes on a unit of work's connection (its tenant scope holds)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def run(self, practice: str) -> AuditRun | None:
        row = self._conn.execute(
            select(
                R.practice, R.policy_name, R.policy_version, R.policy_digest, R.timezone,
                R.as_of_us, R.ledger_seq, R.valid_until_us, R.computed_us, R.findings,
            ).where(R.practice == practice)
        ).first()  # fmt: skip
        return None if row is None else _run_of(row)

    def head(self) -> int:
        """The ledger's last entry (0 when empty)."""
        return int(self._conn.execute(select(func.coalesce(func.max(E.seq), 0))).scalar_one())

    def moved_on(self, practice: str, seq: int) -> bool:
        """Whether the ledger holds an entry of `practice` after `seq` that is not a review
        step. Reads the entries after `seq` in order (the primary key), up to the first; none
        at all is one probe of the key's last entry (a planner guessing from stale statistics
        could otherwise read the whole ledger to find nothing)."""
        if self.head() <= seq:
            return False
        found = self._conn.execute(
            select(E.seq)
            .where(E.seq > seq, E.practice == practice, E.kind.not_like("finding.%"))
            .order_by(E.seq)
            .limit(1)
        ).first()
        return found is not None

    def stale(self, run: AuditRun | None, policy: Policy, zone: str, now: Instant) -> str | None:
        """Why the stored run of a practice is out of date (plain words), or None."""
        if run is None:
            return "no audit stored yet"
        if run.policy_digest != policy_digest(policy):
            return "the policy changed"
        if run.timezone != zone:
            return "the practice's time zone changed"
        if run.valid_until is not None and now > run.valid_until:
            return "a time limit passed"
        if now < run.as_of:
            return "the stored audit judged a later time"
        if self.moved_on(run.practice, run.ledger_seq):
            return "records changed"
        return None

    def replace(self, run: AuditRun, rows: Sequence[tuple[Any, ...]]) -> None:
        """Put `run` and its findings in place of the practice's last (in the caller's
        transaction)."""
        conn = self._conn
        conn.execute(delete(StoredFindingRow).where(F.practice == run.practice))
        conn.execute(delete(FindingRunRow).where(R.practice == run.practice))
        conn.execute(
            insert(FindingRunRow).values(
                practice=run.practice,
                policy_name=run.policy_name,
                policy_version=run.policy_version,
                policy_digest=run.policy_digest,
                timezone=run.timezone,
                as_of_us=run.as_of,
                ledger_seq=run.ledger_seq,
                valid_until_us=run.valid_until,
                computed_us=run.computed,
                findings=run.findings,
            )
        )
        for i in range(0, len(rows), CHUNK):
            chunk = [dict(zip(COLUMNS, row, strict=True)) for row in rows[i : i + CHUNK]]
            conn.execute(insert(StoredFindingRow), chunk)

    def _where(self, f: DashboardFilter, zone: str) -> list[Any]:
        lo = day_bounds(f.date_from, zone)[0]
        hi = day_bounds(f.date_to, zone)[1]
        where = [F.practice == f.practice, F.start_us >= lo, F.start_us < hi]
        if f.therapist is not None:
            where.append(F.therapist == f.therapist)
        if f.room is not None:
            where.append(F.room == f.room)
        if f.reason is not None:
            where.append(F.reason == f.reason)
        return where

    def week_counts(self, f: DashboardFilter, zone: str) -> list[WeekRuleCount]:
        """Stored findings of the filter's sessions by (week, rule, severity). With a reason,
        only findings about an exit of that reason."""
        rows = self._conn.execute(
            select(F.week, F.rule, F.severity, func.count())
            .where(*self._where(f, zone))
            .group_by(F.week, F.rule, F.severity)
            .order_by(F.week, F.rule, F.severity)
        ).all()
        return [WeekRuleCount(date.fromisoformat(w), r, s, int(n)) for w, r, s, n in rows]

    def about_therapists(self, practice: str) -> int:
        """Stored findings with no session (`exit-rate-high`)."""
        return int(
            self._conn.execute(
                select(func.count()).where(F.practice == practice, F.start_us.is_(None))
            ).scalar_one()
        )

    def waiting_before(self, practice: str, before: Instant) -> Counter[tuple[str, str]]:
        """Stored findings about sessions that started before `before` whose review is open
        (or was never started) or acknowledged, by (state, severity)."""
        state = func.coalesce(V.state, "open")
        rows = self._conn.execute(
            select(state, F.severity, func.count())
            .select_from(StoredFindingRow)
            .join(FindingReviewRow, V.key == F.key, isouter=True)
            .where(F.practice == practice, F.start_us < before, state.in_(("open", "acknowledged")))
            .group_by(state, F.severity)
        ).all()
        return Counter({(str(st), str(sev)): int(n) for st, sev, n in rows})

    def sessions_of(
        self, f: DashboardFilter, zone: str, rule: str, severity: str | None, limit: int
    ) -> list[str]:
        """The sessions behind a bar of the chart: those with a stored finding of `rule` (and
        `severity`) within the filter, by start then id."""
        where = [*self._where(f, zone), F.rule == rule]
        if severity is not None:
            where.append(F.severity == severity)
        rows = self._conn.execute(
            select(F.session, func.min(F.start_us))
            .where(*where, F.session.is_not(None))
            .group_by(F.session)
            .order_by(func.min(F.start_us), F.session)
            .limit(limit)
        ).all()
        return [str(r[0]) for r in rows]

    def finding(self, practice: str, key: str, version: str) -> Finding | None:
        """The stored finding with this review key (the first, if a rule found it twice)."""
        row = self._conn.execute(
            select(F.rule, F.severity, F.session, F.exit, F.therapist, F.message)
            .where(F.practice == practice, F.key == key)
            .order_by(F.n)
            .limit(1)
        ).first()
        return None if row is None else _finding_of(row, version)

    def findings(self, practice: str, version: str) -> list[Finding]:
        """Every stored finding of the practice, in the audit's order."""
        rows = self._conn.execute(
            select(F.rule, F.severity, F.session, F.exit, F.therapist, F.message)
            .where(F.practice == practice)
            .order_by(F.n)
        ).all()
        return [_finding_of(row, version) for row in rows]


def findings_by_week(
    conn: Connection, records: Records, f: DashboardFilter, zone: str, policy: Policy, at: Instant
) -> FindingsByWeek:
    """The findings chart's figures as of `at`, read-only: from the store if its run holds at
    `at`, else from an audit of the filter's period run here and not stored (the monthly
    report: a read-only unit of work, and perhaps an `--as-of` in the past)."""
    store = FindingsStore(conn)
    run = store.run(f.practice)
    if run is not None and store.stale(run, policy, zone, at) is None:
        counts = store.week_counts(f, zone)
        about = store.about_therapists(f.practice)
        return FindingsByWeek(tuple(counts), run.as_of, run.policy_version, about)
    judged = judge(records, f.practice, zone, policy, at, (f.date_from, f.date_to))
    lo, hi = day_bounds(f.date_from, zone)[0], day_bounds(f.date_to, zone)[1]
    tally: Counter[tuple[str, str, str]] = Counter()
    about = 0
    for row in judged.rows:
        values = dict(zip(COLUMNS, row, strict=True))
        start = values["start_us"]
        if start is None:
            about += 1
            continue
        if not lo <= start < hi:
            continue
        if any(
            wanted is not None and values[name] != wanted
            for name, wanted in (("therapist", f.therapist), ("room", f.room), ("reason", f.reason))
        ):
            continue
        tally[(values["week"], values["rule"], values["severity"])] += 1
    counts = [
        WeekRuleCount(date.fromisoformat(w), r, s, n) for (w, r, s), n in sorted(tally.items())
    ]
    return FindingsByWeek(tuple(counts), at, policy.version, about)


def row_counts(conn: Connection) -> tuple[int, int]:
    """(rows of `findings`, the findings the runs say they wrote): equal unless someone changed
    the tables behind Stepout's back (`stepout verify`)."""
    rows = int(conn.execute(select(func.count()).select_from(StoredFindingRow)).scalar_one())
    said = int(conn.execute(select(func.coalesce(func.sum(R.findings), 0))).scalar_one())
    return rows, said


_refreshing: dict[str, threading.Lock] = {}
_refreshing_guard = threading.Lock()


def _lock_of(practice: str) -> threading.Lock:
    with _refreshing_guard:
        return _refreshing.setdefault(practice, threading.Lock())


def current_run(db: "Database", practice: str, policy: Policy, now: Instant) -> AuditRun | None:
    """The stored run if it is current, else None (read only)."""
    with db.uow(read_only=True) as uow:
        store = FindingsStore(uow.connection)
        found = uow.records.practice(practice)
        zone = found.timezone if found is not None else "UTC"
        run = store.run(practice)
        return None if store.stale(run, policy, zone, now) else run


def refresh(
    db: "Database", practice: str, policy: Policy, now: Instant, *, force: bool = False
) -> AuditRun:
    """The practice's stored run, recomputed first if it is stale (or `force`). The audit
    reads one snapshot (its ledger position with it) without the write lock; the write then
    replaces the stored run only if it is older than this one. One refresh per practice at a
    time in this process; another process's refresh at the same time only repeats the work."""
    with _lock_of(practice):
        with db.uow(read_only=True) as uow:
            store = FindingsStore(uow.connection)
            found = uow.records.practice(practice)
            zone = found.timezone if found is not None else "UTC"
            run = store.run(practice)
            if not force and run is not None and store.stale(run, policy, zone, now) is None:
                return run
            seq = store.head()
            judged = judge(uow.records, practice, zone, policy, now)
        fresh = AuditRun(
            practice, policy.name, policy.version, policy_digest(policy), zone, now, seq,
            judged.valid_until, now, len(judged.rows),
        )  # fmt: skip
        with db.uow() as uow:
            store = FindingsStore(uow.connection)
            stored = store.run(practice)
            if (
                not force
                and stored is not None
                and stored.policy_digest == fresh.policy_digest
                and stored.ledger_seq > fresh.ledger_seq
            ):
                return stored  # another refresh saw more of the ledger meanwhile
            store.replace(fresh, judged.rows)
            uow.commit()
        return fresh


def lookup(
    uow: "ReviewsUnitOfWork", practice: str, key: str, policy: Policy, at: Instant
) -> Finding | None:
    """`stepout.services.reviews.FindingsLookup` on SQL: the stored finding with `key`, the
    store refreshed first in `uow`'s transaction if it is stale (a writing unit of work holds
    the ledger's lock, so nothing moves meanwhile)."""
    if not isinstance(uow, SqlUnitOfWork):
        raise TypeError("the findings store needs an SQL unit of work")
    store = FindingsStore(uow.connection)
    found = uow.records.practice(practice)
    zone = found.timezone if found is not None else "UTC"
    run = store.run(practice)
    if store.stale(run, policy, zone, at) is not None:
        seq = store.head()
        judged = judge(uow.records, practice, zone, policy, at)
        fresh = AuditRun(
            practice, policy.name, policy.version, policy_digest(policy), zone, at, seq,
            judged.valid_until, at, len(judged.rows),
        )  # fmt: skip
        store.replace(fresh, judged.rows)
    return store.finding(practice, key, policy.version)


def refresh_soon(
    db: "Database", practice: str, policy: Policy, now: Instant, wait: float | None
) -> bool:
    """Refresh the practice's stored run on a thread of its own and wait for it at most `wait`
    seconds (None: until it is done). True if it is done: the dashboard shows the last run
    meanwhile, and says that a new one is under way."""
    failed: list[BaseException] = []

    def work() -> None:
        try:
            refresh(db, practice, policy, now)
        except Exception as e:  # logged by type only: no health data
            failed.append(e)
            log.warning("findings store: refresh of a practice failed (%s)", type(e).__name__)

    # The caller's context goes with it: its tenant scope (a web request's: its practice).
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(work,), name="findings-refresh", daemon=True
    )
    thread.start()
    thread.join(wait)
    if failed and wait is None:
        raise failed[0]
    return not thread.is_alive() and not failed
