"""The Records port on SQL: lookups by id, the open-exit check, and the bundle stream.

`bundles` runs three ordered, streaming queries (sessions; their exits; their concerns) with
the same filter and merges them in Python, so that memory stays bounded by one fetch chunk
whatever the selection holds.

Free text is stored sealed (`fieldcrypt`); the records built here hold it opened.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    false,
    func,
    or_,
    select,
    true,
)

from stepout.adapters.db import appointments, tenancy
from stepout.adapters.db.fieldcrypt import FieldCrypt
from stepout.adapters.db.rows import (
    CONCERN_COLUMNS,
    CONCERNS_BY_ID,
    EXIT_COLUMNS,
    EXITS_BY_ID,
    PRACTICES_BY_ID,
    SESSION_COLUMNS,
    SESSIONS_BY_ID,
    C,
    P,
    Reveal,
    S,
    X,
    codes_of,
    open_concern,
    open_exit,
    practice_of,
    rows_by_id,
    session_of,
    stream,
)
from stepout.adapters.db.tables import ConcernRow, ExitRow, SessionRow
from stepout.domain.bundle import SessionBundle
from stepout.domain.instants import MICROS_PER_MINUTE, Instant, day_bounds
from stepout.domain.practice import Practice
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.schedule import Appointment
from stepout.services.ports import Selection

PracticeColumn = Any  # a practice column: sessions', exits' or concerns'
Condition = Callable[[PracticeColumn], ColumnElement[bool]]
DAY_US = 24 * 60 * MICROS_PER_MINUTE

_EXITS = select(*EXIT_COLUMNS).join_from(ExitRow, SessionRow, X.session_pk == S.pk)
_CONCERNS = select(*CONCERN_COLUMNS).join_from(ConcernRow, SessionRow, C.session_pk == S.pk)


class OnConnection:
    """Reads and writes on a unit of work's connection, once the ledger's pending bulk writes
    (if any) have landed: `settle` waits for them."""

    def __init__(self, conn: Connection, settle: Callable[[], None] | None = None) -> None:
        self._connection = conn
        self._settle = settle

    @property
    def _conn(self) -> Connection:
        """The connection, once the ledger's pending bulk writes (if any) have landed."""
        if self._settle is not None:
            self._settle()
        return self._connection


class SqlRecords(OnConnection):
    """Reads the projections inside one unit of work's transaction; `crypt` opens the free
    text."""

    def __init__(
        self, conn: Connection, crypt: FieldCrypt, settle: Callable[[], None] | None = None
    ) -> None:
        super().__init__(conn, settle)
        self._reveal: Reveal = crypt.open

    def _exit(self, row: Any) -> Exit:
        return open_exit(row, self._reveal)

    def _concern(self, row: Any) -> Concern:
        return open_concern(row, self._reveal)

    def practice(self, practice_id: str) -> Practice | None:
        return self.practices([practice_id]).get(practice_id)

    def practices(self, ids: Iterable[str]) -> dict[str, Practice]:
        rows = rows_by_id(self._conn, PRACTICES_BY_ID, ids)
        return {r[0]: practice_of(r) for r in rows if self._reaches(r[0])}

    def session(self, session_id: str) -> Session | None:
        return self.sessions([session_id]).get(session_id)

    def sessions(self, ids: Iterable[str]) -> dict[str, Session]:
        rows = rows_by_id(self._conn, SESSIONS_BY_ID, ids)
        return {r[1]: session_of(r) for r in rows if self._reaches(r[2])}

    def _reaches(self, practice: str) -> bool:
        """Sealed tenants on every engine: a lookup by id finds nothing of a practice beyond
        the unit of work's scope (its exits and concerns then have no session to show)."""
        return tenancy.reaches(tenancy.bound(self._connection), practice)

    def exit(self, exit_id: str) -> Exit | None:
        return self.exits([exit_id]).get(exit_id)

    def exits(self, ids: Iterable[str]) -> dict[str, Exit]:
        return {r[1]: self._exit(r) for r in rows_by_id(self._conn, EXITS_BY_ID, ids)}

    def exits_of_session(self, session_id: str) -> list[Exit]:
        stmt = _EXITS.where(S.id == session_id).order_by(X.left_us, X.id)
        return [self._exit(r) for r in self._conn.execute(stmt)]

    def concern(self, concern_id: str) -> Concern | None:
        return self.concerns([concern_id]).get(concern_id)

    def concerns(self, ids: Iterable[str]) -> dict[str, Concern]:
        return {r[1]: self._concern(r) for r in rows_by_id(self._conn, CONCERNS_BY_ID, ids)}

    def concerns_of_session(self, session_id: str) -> list[Concern]:
        stmt = _CONCERNS.where(S.id == session_id).order_by(C.raised_us, C.id)
        return [self._concern(r) for r in self._conn.execute(stmt)]

    def appointment(self, appointment_id: str) -> Appointment | None:
        return self.appointments([appointment_id]).get(appointment_id)

    def appointments(self, ids: Iterable[str]) -> dict[str, Appointment]:
        found = appointments.stored(self._conn, ids)
        return {i: a for i, a in found.items() if self._reaches(a.practice)}

    def appointments_of_therapist(
        self, practice: str, therapist: str, starts_from: Instant, starts_before: Instant
    ) -> list[tuple[Appointment, bool]]:
        return appointments.of_therapist(
            self._conn, practice, therapist, starts_from, starts_before
        )

    def open_exit_of_therapist(self, practice: str, therapist: str) -> Exit | None:
        stmt = (
            _EXITS.where(
                X.therapist == therapist,
                X.returned_us.is_(None),
                X.practice == practice,
                S.end_us.is_(None),
            )
            .order_by(X.left_us.desc(), X.id.desc())
            .limit(1)
        )
        row = self._conn.execute(stmt).first()
        return None if row is None else self._exit(row)

    def sessions_in_progress(self, practice: str) -> list[Session]:
        stmt = (
            select(*SESSION_COLUMNS)
            .where(S.practice == practice, S.end_us.is_(None))
            .order_by(S.start_us, S.id)
        )
        return [session_of(row) for row in self._conn.execute(stmt)]

    def session_in_room(self, practice: str, room: str) -> Session | None:
        stmt = (
            select(*SESSION_COLUMNS)
            .where(S.practice == practice, S.room == room, S.end_us.is_(None))
            .order_by(S.start_us.desc(), S.id.desc())
            .limit(1)
        )
        row = self._conn.execute(stmt).first()
        return None if row is None else session_of(row)

    def last_ended_in_room(self, practice: str, room: str, ended_since: Instant) -> Session | None:
        # A session ending after `ended_since` started less than a day before it: the bound
        # keeps the scan on the (practice, start) index's recent end.
        stmt = (
            select(*SESSION_COLUMNS)
            .where(
                S.practice == practice,
                S.start_us >= ended_since - DAY_US,
                S.room == room,
                S.end_us >= ended_since,
            )
            .order_by(S.end_us.desc(), S.id.desc())
            .limit(1)
        )
        row = self._conn.execute(stmt).first()
        return None if row is None else session_of(row)

    def sessions_of_therapist(
        self, practice: str, therapist: str, started_from: Instant, started_before: Instant
    ) -> list[Session]:
        stmt = (
            select(*SESSION_COLUMNS)
            .where(
                S.therapist == therapist,
                S.practice == practice,
                S.start_us >= started_from,
                S.start_us < started_before,
            )
            .order_by(S.start_us, S.id)
        )
        return [session_of(r) for r in self._conn.execute(stmt)]

    def sessions_of_practice(
        self, practice: str, started_from: Instant, started_before: Instant
    ) -> list[Session]:
        stmt = (
            select(*SESSION_COLUMNS)
            .where(
                S.practice == practice,
                S.start_us >= started_from,
                S.start_us < started_before,
            )
            .order_by(S.start_us, S.id)
        )
        return [session_of(r) for r in self._conn.execute(stmt)]

    def exits_to_sign(self, practice: str, therapist: str) -> list[Exit]:
        stmt = _EXITS.where(
            X.therapist == therapist,
            X.practice == practice,
            X.returned_us.is_not(None),
            X.signed_us.is_(None),
        ).order_by(X.left_us, X.id)
        return [self._exit(r) for r in self._conn.execute(stmt)]

    def open_concerns(self, practice: str, limit: int) -> list[Concern]:
        stmt = (
            _CONCERNS.where(C.practice == practice, C.acknowledged_us.is_(None))
            .order_by(C.raised_us, C.id)
            .limit(limit)
        )
        return [self._concern(r) for r in self._conn.execute(stmt)]

    def bundles(self, selection: Selection) -> Iterator[SessionBundle]:
        return merge_bundles(self._conn, self._reveal, self._filter(selection))

    def bundles_to_judge(
        self,
        selection: Selection,
        billing_floor: Callable[[Sequence[str]], int] | None,
        *,
        count_therapists: bool = True,
    ) -> tuple[Iterator[SessionBundle], dict[str, tuple[int, int]]]:
        """The bundles that can yield a finding (an exit, a concern, or fewer gross minutes
        than `billing_floor(billed_codes)`), and each therapist's (sessions, sessions with
        an exit) over the whole selection: SQL does the counting and the skipping."""
        condition = self._filter(selection)
        selected = condition(S.practice)
        with_exit = S.pk.in_(select(X.session_pk))
        counts: dict[str, tuple[int, int]] = {}
        if count_therapists:
            per_therapist = (
                select(S.therapist, func.count(), func.sum(case((with_exit, 1), else_=0)))
                .where(selected)
                .group_by(S.therapist)
            )
            counts = {t: (n, int(x or 0)) for t, n, x in self._conn.execute(per_therapist)}
        wanted: list[ColumnElement[bool]] = [with_exit, S.pk.in_(select(C.session_pk))]
        if billing_floor is not None:
            floors = {}
            for (text,) in self._conn.execute(select(S.billed_codes).where(selected).distinct()):
                if (floor := billing_floor(codes_of(text))) > 0:
                    floors[text] = floor * MICROS_PER_MINUTE
            if floors:
                wanted.append(S.end_us - S.start_us < case(floors, value=S.billed_codes, else_=0))
        return merge_bundles(self._conn, self._reveal, condition, or_(*wanted)), counts

    def dump(self) -> Iterator[Session | Exit | Concern]:
        scope = tenancy.bound(self._connection)
        mine = (lambda p: p == scope) if isinstance(scope, str) else (lambda p: true())
        for bundle in merge_bundles(self._conn, self._reveal, mine):
            yield bundle.session
            yield from bundle.exits
            yield from bundle.concerns

    def _filter(self, selection: Selection) -> Condition:
        """The selection as a condition on the sessions, with the practice read from the
        given column (the session's, or the copy an exit or concern holds: SQLite then
        reads the few exits and sorts them rather than probing for each session). Within a
        practice's scope, only that practice is read, whatever the selection names."""
        scope = tenancy.bound(self._connection)
        if isinstance(scope, str):
            if selection.practice not in (None, scope):
                return lambda practice: false()
            selection = replace(selection, practice=scope)
        base: list[ColumnElement[bool]] = [S.end_us.is_not(None)]
        if selection.therapist is not None:
            base.append(S.therapist == selection.therapist)
        dated = selection.date_from is not None or selection.date_to is not None
        zones: dict[str | None, list[str]]  # practices by time zone; {} for any practice
        if dated:
            zones = self._zones(selection.practice)
        elif selection.practice is not None:
            zones = {None: [selection.practice]}
        else:  # naming the only practice lets its (practice, start) index give the order
            only = list(self._conn.execute(select(P.id).limit(2)).scalars())
            zones = {None: only} if len(only) == 1 else {}

        def condition(practice: PracticeColumn) -> ColumnElement[bool]:
            if not zones:
                return false() if dated else and_(*base)
            spans: list[ColumnElement[bool]] = []
            for zone, ids in zones.items():
                bounds = [practice == ids[0] if len(ids) == 1 else practice.in_(ids)]
                if zone is not None and selection.date_from is not None:
                    bounds.append(S.start_us >= day_bounds(selection.date_from, zone)[0])
                if zone is not None and selection.date_to is not None:
                    bounds.append(S.start_us < day_bounds(selection.date_to, zone)[1])
                spans.append(and_(*bounds))
            return and_(*base, or_(*spans))

        return condition

    def _zones(self, practice: str | None) -> dict[str | None, list[str]]:
        """Practice ids by time zone, for reading dates (all practices, or the one)."""
        stmt = select(P.id, P.timezone)
        if practice is not None:
            stmt = stmt.where(P.id == practice)
        zones: dict[str | None, list[str]] = {}
        for practice_id, zone in self._conn.execute(stmt):
            zones.setdefault(zone, []).append(practice_id)
        return zones


def merge_bundles(
    conn: Connection,
    reveal: Reveal,
    condition: Condition,
    only: ColumnElement[bool] | None = None,
) -> Iterator[SessionBundle]:
    """Sessions matching `condition` (and `only`, which no session with an exit or a concern
    fails) in (start, id) order, each with its exits (by left_at, id) and concerns (by
    raised_at, id): three streams merged on the session's sort key."""
    sessions_of = _where(select(*SESSION_COLUMNS), condition(S.practice))
    sessions = stream(conn, _where(sessions_of, only).order_by(S.start_us, S.id))
    exits = stream(
        conn,
        _where(select(*EXIT_COLUMNS, S.start_us), condition(X.practice))
        .join_from(ExitRow, SessionRow, X.session_pk == S.pk)
        .order_by(S.start_us, S.id, X.left_us, X.id),
    )
    concerns = stream(
        conn,
        _where(select(*CONCERN_COLUMNS, S.start_us), condition(C.practice))
        .join_from(ConcernRow, SessionRow, C.session_pk == S.pk)
        .order_by(S.start_us, S.id, C.raised_us, C.id),
    )
    # Exit rows end with their session's start (17), concern rows too (7); 2 is its id.
    # A row whose session is not in the session stream is skipped: it sorts before.
    nx = next(exits, None)
    nc = next(concerns, None)
    for row in sessions:
        sid, start = row[1], row[7]
        while (
            nx is not None
            and nx[2] != sid
            and (nx[17] < start or (nx[17] == start and nx[2] < sid))
        ):
            nx = next(exits, None)
        if nx is not None and nx[2] == sid:
            xs = []
            while nx is not None and nx[2] == sid:
                xs.append(open_exit(nx, reveal))
                nx = next(exits, None)
            exits_here: tuple[Exit, ...] = tuple(xs)
        else:
            exits_here = ()
        while (
            nc is not None and nc[2] != sid and (nc[7] < start or (nc[7] == start and nc[2] < sid))
        ):
            nc = next(concerns, None)
        if nc is not None and nc[2] == sid:
            cs = []
            while nc is not None and nc[2] == sid:
                cs.append(open_concern(nc, reveal))
                nc = next(concerns, None)
            concerns_here: tuple[Concern, ...] = tuple(cs)
        else:
            concerns_here = ()
        yield SessionBundle(session_of(row), exits_here, concerns_here)


def _where(stmt: Select[Any], condition: ColumnElement[bool] | None) -> Select[Any]:
    return stmt if condition is None else stmt.where(condition)
