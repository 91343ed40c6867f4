"""An in-memory store with the same ports as the SQL adapter: for fast unit tests of the
service layer, and as the reference for what the ports mean."""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from stepout.domain.events import Event, Record, evolve
from stepout.domain.facetime import gross_minutes
from stepout.domain.instants import Instant, day_bounds
from stepout.domain.practice import Practice
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.schedule import Appointment
from stepout.services.audit import AuditRecord
from stepout.services.ports import Selection, SessionBundle


@dataclass
class MemoryState:
    """What is committed: the ledger and the records folded from it."""

    events: list[Event] = field(default_factory=list)
    records: dict[tuple[str, str], Record] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)


def _key(event: Event) -> tuple[str, str]:
    return (event.entity, event.subject)


class MemoryRecords:
    def __init__(self, records: dict[tuple[str, str], Record]) -> None:
        self._r = records

    def _get(self, entity: str, key: str) -> Record | None:
        return self._r.get((entity, key))

    def practice(self, practice_id: str) -> Practice | None:
        found = self._get("practice", practice_id)
        return found if isinstance(found, Practice) else None

    def practices(self, ids: Iterable[str]) -> dict[str, Practice]:
        return {i: p for i in ids if (p := self.practice(i)) is not None}

    def session(self, session_id: str) -> Session | None:
        found = self._get("session", session_id)
        return found if isinstance(found, Session) else None

    def sessions(self, ids: Iterable[str]) -> dict[str, Session]:
        return {i: s for i in ids if (s := self.session(i)) is not None}

    def exit(self, exit_id: str) -> Exit | None:
        found = self._get("exit", exit_id)
        return found if isinstance(found, Exit) else None

    def exits(self, ids: Iterable[str]) -> dict[str, Exit]:
        return {i: x for i in ids if (x := self.exit(i)) is not None}

    def _all_exits(self) -> list[Exit]:
        return [r for r in self._r.values() if isinstance(r, Exit)]

    def _all_concerns(self) -> list[Concern]:
        return [r for r in self._r.values() if isinstance(r, Concern)]

    def exits_of_session(self, session_id: str) -> list[Exit]:
        found = [x for x in self._all_exits() if x.session == session_id]
        return sorted(found, key=lambda x: (x.left_at, x.id))

    def concern(self, concern_id: str) -> Concern | None:
        found = self._get("concern", concern_id)
        return found if isinstance(found, Concern) else None

    def concerns(self, ids: Iterable[str]) -> dict[str, Concern]:
        return {i: c for i in ids if (c := self.concern(i)) is not None}

    def concerns_of_session(self, session_id: str) -> list[Concern]:
        found = [c for c in self._all_concerns() if c.session == session_id]
        return sorted(found, key=lambda c: (c.raised_at, c.id))

    def appointment(self, appointment_id: str) -> Appointment | None:
        found = self._get("appointment", appointment_id)
        return found if isinstance(found, Appointment) else None

    def appointments(self, ids: Iterable[str]) -> dict[str, Appointment]:
        return {i: a for i in ids if (a := self.appointment(i)) is not None}

    def appointments_of_therapist(
        self, practice: str, therapist: str, starts_from: Instant, starts_before: Instant
    ) -> list[tuple[Appointment, bool]]:
        found = [
            r
            for r in self._r.values()
            if isinstance(r, Appointment)
            and (r.practice, r.therapist) == (practice, therapist)
            and starts_from <= r.start < starts_before
        ]
        found.sort(key=lambda a: (a.start, a.id))
        return [
            (a, (s := self.session(a.id)) is not None and s.practice == a.practice) for a in found
        ]

    def open_exit_of_therapist(self, practice: str, therapist: str) -> Exit | None:
        for x in self._all_exits():
            s = self.session(x.session)
            if (
                x.returned_at is None
                and s is not None
                and s.in_progress
                and s.practice == practice
                and s.therapist == therapist
            ):
                return x
        return None

    def _all_sessions(self) -> list[Session]:
        return [r for r in self._r.values() if isinstance(r, Session)]

    def sessions_in_progress(self, practice: str) -> list[Session]:
        found = [s for s in self._all_sessions() if s.practice == practice and s.in_progress]
        return sorted(found, key=lambda s: (s.start, s.id))

    def session_in_room(self, practice: str, room: str) -> Session | None:
        found = [
            s
            for s in self._all_sessions()
            if s.practice == practice and s.room == room and s.in_progress
        ]
        return max(found, key=lambda s: (s.start, s.id), default=None)

    def last_ended_in_room(self, practice: str, room: str, ended_since: Instant) -> Session | None:
        found = [
            s
            for s in self._all_sessions()
            if s.practice == practice
            and s.room == room
            and s.end is not None
            and s.end >= ended_since
        ]
        return max(found, key=lambda s: (s.end or 0, s.id), default=None)

    def sessions_of_therapist(
        self, practice: str, therapist: str, started_from: Instant, started_before: Instant
    ) -> list[Session]:
        found = [
            s
            for s in self._all_sessions()
            if s.practice == practice
            and s.therapist == therapist
            and started_from <= s.start < started_before
        ]
        return sorted(found, key=lambda s: (s.start, s.id))

    def sessions_of_practice(
        self, practice: str, started_from: Instant, started_before: Instant
    ) -> list[Session]:
        found = [
            s
            for s in self._all_sessions()
            if s.practice == practice and started_from <= s.start < started_before
        ]
        return sorted(found, key=lambda s: (s.start, s.id))

    def exits_to_sign(self, practice: str, therapist: str) -> list[Exit]:
        found = []
        for x in self._all_exits():
            s = self.session(x.session)
            if (
                s is not None
                and s.practice == practice
                and s.therapist == therapist
                and x.returned_at is not None
                and x.signed_at is None
            ):
                found.append(x)
        return sorted(found, key=lambda x: (x.left_at, x.id))

    def open_concerns(self, practice: str, limit: int) -> list[Concern]:
        found = [
            c
            for c in self._all_concerns()
            if c.acknowledged_at is None
            and (s := self.session(c.session)) is not None
            and s.practice == practice
        ]
        return sorted(found, key=lambda c: (c.raised_at, c.id))[:limit]

    def _selected(self, s: Session, sel: Selection) -> bool:
        if s.end is None or (sel.practice and s.practice != sel.practice):
            return False
        if sel.therapist and s.therapist != sel.therapist:
            return False
        zone = (p.timezone if (p := self.practice(s.practice)) else None) or "UTC"
        if sel.date_from and s.start < day_bounds(sel.date_from, zone)[0]:
            return False
        return not (sel.date_to and s.start >= day_bounds(sel.date_to, zone)[1])

    def bundles(self, selection: Selection) -> Iterator[SessionBundle]:
        chosen = [r for r in self._r.values() if isinstance(r, Session)]
        chosen = sorted(
            (s for s in chosen if self._selected(s, selection)), key=lambda s: (s.start, s.id)
        )
        for s in chosen:
            yield SessionBundle(
                s, tuple(self.exits_of_session(s.id)), tuple(self.concerns_of_session(s.id))
            )

    def bundles_to_judge(
        self,
        selection: Selection,
        billing_floor: Callable[[Sequence[str]], int] | None,
        *,
        count_therapists: bool = True,
    ) -> tuple[Iterator[SessionBundle], dict[str, tuple[int, int]]]:
        counts: dict[str, tuple[int, int]] = {}
        chosen: list[SessionBundle] = []
        for b in self.bundles(selection):
            s = b.session
            sessions, with_exits = counts.get(s.therapist, (0, 0))
            counts[s.therapist] = (sessions + 1, with_exits + bool(b.exits))
            end = s.end or s.start
            short = billing_floor is not None and gross_minutes(s.start, end) < billing_floor(
                s.billed_codes
            )
            if b.exits or b.concerns or short:
                chosen.append(b)
        return iter(chosen), counts if count_therapists else {}

    def dump(self) -> Iterator[Session | Exit | Concern]:
        sessions = [r for r in self._r.values() if isinstance(r, Session)]
        for s in sorted(sessions, key=lambda s: (s.start, s.id)):
            yield s
            yield from self.exits_of_session(s.id)
            yield from self.concerns_of_session(s.id)


class MemoryLedger:
    def __init__(self, events: list[Event], records: dict[tuple[str, str], Record]) -> None:
        self._events = events
        self._records = records

    def append(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.kind.startswith("finding."):  # a review: see `MemoryReviews`
                self._events.append(event)
                continue
            key = _key(event)
            self._records[key] = evolve(self._records.get(key), event)
            self._events.append(event)


class MemoryAudit:
    """The audit trail in memory: records in order (the chain is the SQL adapter's)."""

    def __init__(self, records: list[AuditRecord]) -> None:
        self._records = records
        self._staged: list[AuditRecord | Callable[[], AuditRecord]] = []

    def record(self, entry: AuditRecord) -> None:
        self._records.append(entry)

    def at_commit(self, entry: AuditRecord | Callable[[], AuditRecord]) -> None:
        self._staged.append(entry)

    def flush(self) -> None:
        staged, self._staged = self._staged, []
        for entry in staged:
            self.record(entry if isinstance(entry, AuditRecord) else entry())


class MemoryUnitOfWork:
    """Works on a copy of the state; `commit()` publishes it."""

    def __init__(self, state: MemoryState | None = None) -> None:
        self.state = state if state is not None else MemoryState()
        self.committed = False

    def __enter__(self) -> Self:
        self._events = list(self.state.events)
        self._records = dict(self.state.records)
        self.records = MemoryRecords(self._records)
        self.ledger = MemoryLedger(self._events, self._records)
        self._audit = list(self.state.audit)
        self.audit = MemoryAudit(self._audit)
        self.committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def commit(self) -> None:
        self.audit.flush()
        self.state.audit = list(self._audit)
        self.state.events = list(self._events)
        self.state.records = dict(self._records)
        self.committed = True
