"""The dashboard's rollup: its session and exit figures pre-aggregated by practice-local day
and ISO week, kept by the projection in the same transaction as the ledger append (live
events, imports and `stepout rebuild` alike).

**Why, and which grain.** A year of a group of a million sessions took the dashboard 1.5-4 s
from the base tables: the time went into grouping a million sessions (and computing each one's
billing status), not into reading them. Measured per query at a million sessions for a year,
the share per therapist and billing by week each grouped every session of the period; the
exit figures joined the 45,000 exits to their sessions. Three tables now hold the figures:

- `dashboard_days`: per (practice, local day of the session's start, therapist, room) the
  number of ended sessions in each billing status. About 220,000 rows a year for the
  million-session group (its therapists see about five clients a working day).
- `dashboard_weeks`: the same summed by ISO week (its Monday), about 47,000 rows a year. A
  period of whole days is read as its full weeks from here and the at most six days at each
  end from `dashboard_days`: any period, exact, from about a fifth of the rows the days alone
  would take. (Days alone measured 130-200 ms for the year's two session figures on SQLite;
  weeks and edge days 50-130 ms, with other work on the machine.)
- `dashboard_exits`: one row per exit of an ended session, with its session's day,
  therapist, room and billing status, the reason and the absence length. The quartiles are
  exact nearest-rank values, so each length is kept; exits are about 5 % of sessions, and
  this table needs no join.

Days are computed once, here, with the offset in force at the session's start (`Days`: the
day whose `day_bounds` hold the instant), so weeks are integer arithmetic on day numbers and
exact across DST changes. On SQLite the tables are stored in key order (WITHOUT ROWID), so a
period is one sweep of a practice's rows.

**Keeping it.** After each projection chunk's writes (`Rollup.after_write`):

- New sessions made straight from `session.recorded` events (the import's path), with the
  chunk's new exits of them, are *tallied* in Python (`Tally`): the day from the hour (cached),
  the net minutes as the SQL computes them (`net_minutes`), the billing status of each
  (billed codes, minutes) pair asked of the database once with the very SQL expression the
  direct queries use (`dashboard.billing_status`) and remembered; the counts are then added
  to the stored rows (an upsert) and the exit rows inserted. On SQLite these statements run
  on the import's `Writer` thread after the chunk's inserts.
- Everything else (a session started, ended or amended; an exit declared, returned or
  amended; an exit whose session came in an earlier chunk) *recomputes its keys*: the rows of
  each (practice, therapist, local day) it touches, before and after the change, are deleted
  and inserted again from the base tables in SQL (`Statements`), the weeks of those days from
  the days. A whole key (a therapist's day, a handful of sessions) rather than a delta keeps
  the rollup right whatever changed: a start moved to another day, a therapist or room
  changed, an exit moved to another session, a reason, return time or billed codes amended.

A practice's time zone is set by `practice.created` and no event changes it; were one to,
`refresh_practice` would recompute the practice's rows (as the migration's backfill does).

`rollup_mismatches` tallies every ended session from the base tables and names the tables
and practices whose stored rows differ (for `stepout verify`): the two ways of keeping the
rollup are checked against each other there, and against `DirectDashboard` in the tests.
"""

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, literal_column, text

from stepout.adapters.db.bulk import MAX_PARAMS, MAX_ROWS, Writer, _sizes, insert_rows
from stepout.domain.instants import MICROS_PER_MINUTE, day_bounds
from stepout.domain.practice import Practice
from stepout.domain.records import Exit, Session

DAYS: Final = "dashboard_days"
WEEKS: Final = "dashboard_weeks"
EXITS: Final = "dashboard_exits"
DAY_COLUMNS: Final = (
    "practice", "day", "therapist", "room", "supported", "undercoded", "unsupported",
    "not_billed",
)  # fmt: skip
WEEK_COLUMNS: Final = ("practice", "week", "therapist", "room", *DAY_COLUMNS[4:])
EXIT_COLUMNS: Final = (
    "exit_pk", "practice", "day", "therapist", "room", "session_pk", "reason", "duration_us",
    "status",
)  # fmt: skip
KEYS_PER_STATEMENT: Final = 2_000
_EPOCH: Final = date(1970, 1, 1)
_HOUR: Final = 3_600_000_000

Key = tuple[str, str, int]  # practice, therapist, local day (days since 1970-01-01)
SessionKey = tuple[str, str, int]  # practice, therapist, start (µs)
Row = tuple[Any, ...]
ExitFacts = tuple[str, str | None, int, int | None]  # what the rollup reads of an exit
Before = tuple[list[SessionKey], dict[str, ExitFacts]]  # session keys; exit id -> its facts


def _facts(x: Exit) -> ExitFacts:
    return (x.session, x.reason, x.left_at, x.returned_at)


# -- local days ---------------------------------------------------------------------------


class Days:
    """Local days of instants in one zone: the day whose `day_bounds` hold the instant.
    Instants are looked up by the hour (sessions start on the hour or so: few distinct hours)
    and an hour that a local midnight or an offset change cuts is computed exactly."""

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self._tz = ZoneInfo(zone)
        self.hours: dict[int, int | None] = {}  # hour -> its day, None if cut
        self._bounds: dict[int, tuple[int, int]] = {}

    def bounds(self, day: int) -> tuple[int, int]:
        found = self._bounds.get(day)
        if found is None:
            found = self._bounds[day] = day_bounds(_EPOCH + timedelta(days=day), self.zone)
        return found

    def _exact(self, instant: int) -> int:
        local = datetime.fromtimestamp(instant // 1_000_000, UTC).astimezone(self._tz)
        day = (local.date() - _EPOCH).days
        # The partition of `day_bounds`, should a local midnight be skipped or repeated.
        while instant < self.bounds(day)[0]:
            day -= 1
        while instant >= self.bounds(day)[1]:
            day += 1
        return day

    def of(self, instant: int) -> int:
        hour = instant // _HOUR
        day = self.hours.get(hour, -1)
        if day == -1:
            first, last = self._exact(hour * _HOUR), self._exact(hour * _HOUR + _HOUR - 1)
            day = self.hours[hour] = first if first == last else None
        return self._exact(instant) if day is None else day


# -- the recomputation, in SQL ------------------------------------------------------------


def _keys_cte(dialect: str, mark: str) -> str:
    if dialect == "postgresql":
        return (
            "k AS (SELECT e ->> 0 AS practice, e ->> 1 AS therapist,"
            " CAST(e ->> 2 AS integer) AS day, CAST(e ->> 3 AS bigint) AS lo,"
            " CAST(e ->> 4 AS bigint) AS hi"
            " FROM jsonb_array_elements(CAST(" + mark + " AS jsonb)) AS j(e))"
        )
    return (
        "k AS (SELECT json_extract(value, '$[0]') AS practice,"
        " json_extract(value, '$[1]') AS therapist, json_extract(value, '$[2]') AS day,"
        " json_extract(value, '$[3]') AS lo, json_extract(value, '$[4]') AS hi"
        " FROM json_each(" + mark + "))"
    )


def _pairs(dialect: str, mark: str) -> str:
    """(billed codes as stored, net minutes) from a JSON array of pairs."""
    if dialect == "postgresql":
        return (
            "SELECT e ->> 0 AS billed_codes, CAST(e ->> 1 AS bigint) AS net"
            " FROM jsonb_array_elements(CAST(" + mark + " AS jsonb)) AS j(e)"
        )
    return (
        "SELECT json_extract(value, '$[0]') AS billed_codes,"
        " json_extract(value, '$[1]') AS net FROM json_each(" + mark + ")"
    )


def _status_sql(dialect: Any) -> str:
    # Imported here: `dashboard` reads this module's tables.
    from stepout.adapters.db.dashboard import billing_status

    expr = billing_status(literal_column("m.billed_codes"), literal_column("m.net"))
    return str(expr.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _per_session(keys: str, status: str) -> str:
    """The CTEs up to `t`: each ended session of the keys with its day, net minutes and
    billing status, computed as `dashboard._per_exit` and `dashboard._billing` do."""
    lo = "CASE WHEN x.left_us > s.start_us THEN x.left_us ELSE s.start_us END"
    back = "COALESCE(x.returned_us, s.end_us)"
    hi = f"CASE WHEN {back} < s.end_us THEN {back} ELSE s.end_us END"
    minute = MICROS_PER_MINUTE
    return f"""WITH {keys},
s AS (
  SELECT sn.pk, k.practice, k.day, sn.therapist, sn.room, sn.start_us, sn.end_us,
         sn.billed_codes
  FROM k JOIN sessions sn
    ON sn.practice = k.practice AND sn.therapist = k.therapist
   AND sn.start_us >= k.lo AND sn.start_us < k.hi
  WHERE sn.end_us IS NOT NULL),
o AS (
  SELECT s.*, x.pk AS exit_pk, {lo} AS lo, {hi} AS hi,
         MAX({hi}) OVER (PARTITION BY s.pk ORDER BY {lo}, x.pk
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS covered
  FROM s LEFT JOIN exits x ON x.session_pk = s.pk),
m0 AS (
  SELECT pk, practice, day, therapist, room, start_us, end_us, billed_codes,
         CAST(SUM(CASE WHEN exit_pk IS NULL THEN NULL WHEN hi > st THEN hi - st ELSE 0 END)
              AS BIGINT) AS absent
  FROM (SELECT o.*,
               CASE WHEN covered IS NULL THEN lo WHEN covered > lo THEN covered ELSE lo END
               AS st
        FROM o) q
  GROUP BY pk, practice, day, therapist, room, start_us, end_us, billed_codes),
m AS (
  SELECT m0.*,
         CASE WHEN m0.absent IS NULL THEN (m0.end_us - m0.start_us) / {minute}
              WHEN (m0.end_us - m0.start_us - m0.absent) / {minute} < 0 THEN 0
              ELSE (m0.end_us - m0.start_us - m0.absent) / {minute} END AS net
  FROM m0 AS m0),
t AS (
  SELECT m.pk, m.practice, m.day, m.therapist, m.room, m.end_us, {status} AS status
  FROM m)
"""


def _day_select() -> str:
    counts = ", ".join(
        f"CAST(SUM(CASE WHEN status = '{s}' THEN 1 ELSE 0 END) AS BIGINT)"
        for s in ("supported", "undercoded", "unsupported", "not_billed")
    )
    group = "practice, day, therapist, room"
    return f"SELECT {group}, {counts} FROM t GROUP BY {group}"


def _exit_select() -> str:
    until = "COALESCE(x.returned_us, t.end_us)"
    return (
        f"SELECT x.pk, t.practice, t.day, t.therapist, t.room, t.pk, x.reason,"
        f" CASE WHEN {until} > x.left_us THEN {until} - x.left_us ELSE 0 END, t.status"
        " FROM t JOIN exits x ON x.session_pk = t.pk"
    )


_WEEK_SQL: Final = "(day + 3) / 7 * 7 - 3"  # as `dashboard.week_of`


def week_of(day: int) -> int:
    """The Monday of a local day's ISO week, as `_WEEK_SQL` (integer division truncated)."""
    shifted = day + 3
    return (shifted // 7 if shifted >= 0 else -(-shifted // 7)) * 7 - 3


def _upsert(table: str, columns: Sequence[str], dialect: str) -> str:
    """Add counts to a rollup table's rows. SQLite: `{values}` is the rows' placeholders.
    PostgreSQL: one array per column (`unnest`), so that the statement's text never changes
    (psycopg parses a long text of placeholders again at each call)."""
    names = ", ".join(columns)
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns[4:])
    if dialect == "postgresql":
        types = ("text", "integer", "text", "text", *["bigint"] * (len(columns) - 4))
        arrays = ", ".join(f"CAST(%s AS {t}[])" for t in types)
        rows = f"SELECT * FROM unnest({arrays})"
    else:
        rows = "VALUES {values}"
    return (
        f"INSERT INTO {table} ({names}) {rows}"
        f" ON CONFLICT ({', '.join(columns[:4])}) DO UPDATE SET {adds}"
    )


class Statements:
    """The rollup's statements for one engine, as driver SQL: the refresh of keys (`delete`,
    then `insert`; one parameter, the keys as a JSON array of [practice, therapist, day, lo,
    hi]), the status of (billed codes, minutes) pairs (`statuses`) and the tally's upserts."""

    def __init__(self, conn: Connection) -> None:
        dialect = conn.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        keys = _keys_cte(dialect.name, mark)
        body = _per_session(keys, _status_sql(dialect))
        where = "(practice, day, therapist) IN (SELECT practice, day, therapist FROM k)"
        self.delete = [f"WITH {keys} DELETE FROM {table} WHERE {where}" for table in (DAYS, EXITS)]
        # The weeks of the keys, recomputed from their days once those are.
        weeks = f"{keys}, w AS (SELECT DISTINCT practice, therapist, {_WEEK_SQL} AS week FROM k)"
        self.delete.append(
            f"WITH {weeks} DELETE FROM {WEEKS}"
            " WHERE (practice, week, therapist) IN (SELECT practice, week, therapist FROM w)"
        )
        sums = ", ".join(f"SUM(d.{c})" for c in DAY_COLUMNS[4:])
        self.insert = [
            f"INSERT INTO {DAYS} ({', '.join(DAY_COLUMNS)}) {body} {_day_select()}",
            f"INSERT INTO {EXITS} ({', '.join(EXIT_COLUMNS)}) {body} {_exit_select()}",
            f"INSERT INTO {WEEKS} ({', '.join(WEEK_COLUMNS)}) WITH {weeks}"
            f" SELECT d.practice, w.week, d.therapist, d.room, {sums}"
            f" FROM w JOIN {DAYS} d ON d.practice = w.practice AND d.therapist = w.therapist"
            # Seven seeks of the days' key (practice, day, therapist), not a range scan of
            # the practice's days.
            " AND d.day IN (" + ", ".join(f"w.week + {i}" for i in range(7)) + ")"
            " GROUP BY d.practice, w.week, d.therapist, d.room",
        ]
        self.statuses = (
            f"SELECT m.billed_codes, m.net, {_status_sql(dialect)} FROM"
            f" ({_pairs(dialect.name, mark)}) AS m"
        )
        self.mark = mark
        self.add_days = _upsert(DAYS, DAY_COLUMNS, dialect.name)
        self.add_weeks = _upsert(WEEKS, WEEK_COLUMNS, dialect.name)

    def run(self, conn: Connection, writer: Writer | None, keys: str) -> None:
        for sql in (*self.delete, *self.insert):
            if writer is not None:
                writer.execute(sql, (keys,))
            else:
                conn.exec_driver_sql(sql, (keys,))


_STATEMENTS: dict[str, Statements] = {}


def statements(conn: Connection) -> Statements:
    name = conn.dialect.name
    found = _STATEMENTS.get(name)
    if found is None:
        found = _STATEMENTS[name] = Statements(conn)
    return found


# -- new sessions, tallied in Python ------------------------------------------------------


def _div(micros: int) -> int:
    """Whole minutes, truncated toward zero as SQL's integer division is."""
    return micros // MICROS_PER_MINUTE if micros >= 0 else -(-micros // MICROS_PER_MINUTE)


def net_minutes(start: int, end: int, exits: Sequence[tuple[int, int, int | None]]) -> int:
    """A session's minutes for its billing status, as the SQL computes them
    (`dashboard._billing`): gross if it has no exit, else its span less the union of its
    exits (pk, left, returned) clipped to it, at least 0."""
    if not exits:
        return _div(end - start)
    spans = []
    for pk, left, back in exits:
        until = end if back is None else back
        spans.append((left if left > start else start, pk, until if until < end else end))
    spans.sort()
    covered: int | None = None
    absent = 0
    for lo, _, hi in spans:
        begin = lo if covered is None or covered <= lo else covered
        if hi > begin:
            absent += hi - begin
        covered = hi if covered is None or hi > covered else covered
    net = _div(end - start - absent)
    return net if net > 0 else 0


_MEMO_LIMIT: Final = 200_000
# engine -> (billed codes, minutes) -> the status's index in STATUSES
_memos: dict[str, dict[tuple[str, int], int]] = {}


class Tally:
    """Rollup rows of new sessions, computed here from their rows: a day row's counts per
    (practice, day, therapist, room) and a row per exit. The billing status of each
    (billed codes, minutes) pair is asked of the database once (the same SQL expression as
    every other status) and remembered."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.days: dict[tuple[str, int, str, str], list[int]] = {}
        self.exits: list[Row] = []
        # Sessions whose (codes, minutes) pair has no known status yet: day key, pair, exits.
        self._waiting: list[tuple[tuple[str, int, str, str], tuple[str, int], list[Row]]] = []
        memo = _memos.setdefault(conn.dialect.name, {})
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        self._memo = memo

    def add_rows(
        self,
        rows: Iterable[Row],
        theirs: dict[int, list[tuple[int, str | None, int, int | None]]],
        zone: Callable[[str], Days],
    ) -> None:
        """New sessions as projection rows (`fastrows.SESSION_COLUMNS`; those in progress are
        skipped) and their exits by session pk (pk, reason, left, returned). `zone` gives a
        practice's `Days`. The loop every imported session runs through: kept flat."""
        memo, days, waiting = self._memo, self.days, self._waiting
        zones: dict[str, Days] = {}
        for r in rows:
            end = r[8]
            if end is None:
                continue
            practice, start = r[2], r[7]
            local = zones.get(practice)
            if local is None:
                local = zones[practice] = zone(practice)
            day = local.hours.get(start // _HOUR)
            if day is None:
                day = local.of(start)
            key = (practice, day, r[3], r[5])
            exits = theirs.get(r[0])
            if exits is None:
                span = end - start
                pair = (r[9], span // MICROS_PER_MINUTE if span >= 0 else _div(span))
                index = memo.get(pair)
                if index is None:
                    waiting.append((key, pair, []))
                    continue
                counts = days.get(key)
                if counts is None:
                    counts = days[key] = [0, 0, 0, 0]
                counts[index] += 1
                continue
            pk, therapist, room = r[0], r[3], r[5]
            found: list[Row] = []
            for x, reason, left, back in exits:
                until = end if back is None else back
                duration = until - left if until > left else 0
                found.append((x, practice, day, therapist, room, pk, reason, duration))
            net = net_minutes(start, end, [(x, left, back) for x, _, left, back in exits])
            waiting.append((key, (r[9], net), found))

    def settle(self, sync: Callable[[], None]) -> None:
        """Count the waiting sessions, asking the database the status of unknown pairs."""
        if not self._waiting:
            return
        memo = self._memo
        unknown = {pair for _, pair, _ in self._waiting if pair not in memo}
        if unknown:
            query = statements(self._conn).statuses
            pairs = sorted(unknown)
            for i in range(0, len(pairs), KEYS_PER_STATEMENT):
                part = _json(pairs[i : i + KEYS_PER_STATEMENT])
                for codes, net, status in self._statuses(query, part, sync):
                    memo[str(codes), int(net)] = STATUSES.index(str(status))
        days = self.days
        for key, pair, rows in self._waiting:
            index = memo[pair]
            counts = days.get(key)
            if counts is None:
                counts = days[key] = [0, 0, 0, 0]
            counts[index] += 1
            status = STATUSES[index]
            self.exits.extend((*row, status) for row in rows)
        self._waiting = []

    def _statuses(self, query: str, pairs: str, sync: Callable[[], None]) -> Iterable[Row]:
        """The status of each pair, by the engine's own SQL. The expression reads no table:
        on SQLite a private in-memory database evaluates it, so that the import's pending
        writes need not be waited for."""
        if self._conn.dialect.name == "sqlite":
            with closing(sqlite3.connect(":memory:")) as private:
                return private.execute(query, (pairs,)).fetchall()
        sync()
        return self._conn.exec_driver_sql(query, (pairs,)).all()

    def write(self, writer: Writer | None) -> None:
        """Add the day and week rows to the stored ones and insert the exit rows."""
        conn = self._conn
        run = statements(conn)
        weeks: dict[tuple[str, int, str, str], list[int]] = {}
        for (practice, day, therapist, room), counts in self.days.items():
            key = (practice, week_of(day), therapist, room)
            found = weeks.get(key)
            if found is None:
                weeks[key] = list(counts)
            else:
                for i, n in enumerate(counts):
                    found[i] += n
        width = len(DAY_COLUMNS)
        one = "(" + ", ".join([run.mark] * width) + ")"
        for sql, grouped in ((run.add_days, self.days), (run.add_weeks, weeks)):
            rows = [(*key, *counts) for key, counts in grouped.items()]
            if conn.dialect.name == "postgresql":
                if rows:
                    conn.exec_driver_sql(sql, tuple(list(c) for c in zip(*rows, strict=True)))
                continue
            start = 0
            # Batches of a few sizes (powers of two), so that the statements stay prepared.
            for size in _sizes(len(rows), min(MAX_ROWS, MAX_PARAMS // width)):
                part = rows[start : start + size]
                start += size
                statement = sql.format(values=", ".join([one] * size))
                params = list(chain.from_iterable(part))
                if writer is not None:
                    writer.execute(statement, params)
                else:
                    conn.exec_driver_sql(statement, tuple(params))
        insert_rows(conn, EXITS, EXIT_COLUMNS, self.exits, writer)


STATUSES: Final = ("supported", "undercoded", "unsupported", "not_billed")  # as the columns


# -- what the projection calls ------------------------------------------------------------


class Rollup:
    """Keeps the rollup of one connection's projector: `refresh` the keys of the sessions a
    chunk wrote. Holds the practices' zones and each session's key, for the exits to come."""

    CACHE_LIMIT: Final = 250_000

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._days: dict[str, Days] = {}
        # pk -> key of the sessions folded here (None: in progress, nothing to recompute)
        self._sessions: dict[int, SessionKey | None] = {}
        self._recent: list[Row] = []  # the previous chunk's new session rows

    def reset(self) -> None:
        self._sessions = {}
        self._recent = []

    def zone_known(self, practice: str, zone: str) -> None:
        """A practice's zone, as a chunk creates it (before its row can be read)."""
        if practice not in self._days:
            self._days[practice] = Days(zone)

    def keys_before(self, slots: Iterable[Any]) -> Before:
        """What a chunk's loaded records were before it changes them: the keys of the ended
        sessions, and each exit's session (an amendment may move an exit to another)."""
        keys: list[SessionKey] = []
        exits: dict[str, ExitFacts] = {}
        for rec in (slot.record for slot in slots):
            if isinstance(rec, Session) and rec.end is not None:
                keys.append((rec.practice, rec.therapist, rec.start))
            elif isinstance(rec, Exit):
                exits[rec.id] = _facts(rec)
        return keys, exits

    def after_write(
        self,
        slots: Iterable[Any],
        rows: dict[str, list[Row]],
        refs: dict[str, tuple[int, str, str]],
        before: Before,
        writer: Writer | None,
        sync: Callable[[], None],
    ) -> None:
        """Refresh the keys a projection chunk touched: its slots (records folded the long
        way), its rows (new records straight from their events) and the keys `before`."""
        keys, exits_before = before
        for slot in slots:
            if isinstance(slot.record, Practice):
                self.zone_known(slot.record.id, slot.record.timezone)
        # New sessions straight from their events, with the chunk's new exits of them:
        # tallied here. Everything else: its keys recomputed in SQL, after the tally.
        new = rows["session"]
        exit_sessions: list[int] = []
        theirs: dict[int, list[tuple[int, str | None, int, int | None]]] = {}
        if new:
            # Sessions from `first` on are this chunk's: those in `new` are tallied with
            # these exits; the others, folded the long way, are recomputed below.
            first = new[0][0]
            for r in rows["exit"]:
                if r[2] >= first:
                    theirs.setdefault(r[2], []).append((r[0], r[6], r[8], r[9]))
                else:
                    exit_sessions.append(r[2])

            def zone(practice: str) -> Days:
                if practice not in self._days:
                    sync()
                return self._zone(practice)

            tally = Tally(self._conn)
            tally.add_rows(new, theirs, zone)
            tally.settle(sync)
            tally.write(writer)
        else:
            exit_sessions = [r[2] for r in rows["exit"]]
        sessions: list[tuple[int, str, str, int, int | None]] = []
        moved: list[str] = []
        for slot in slots:
            rec = slot.record
            if isinstance(rec, Session):
                sessions.append((slot.pk, rec.practice, rec.therapist, rec.start, rec.end))
            elif isinstance(rec, Exit):
                was = exits_before.get(rec.id)
                if was == _facts(rec):
                    continue  # informed, a safeguard, checked in, signed: no figure changes
                exit_sessions.append(refs[rec.session][0])
                if was is not None and was[0] != rec.session:
                    moved.append(was[0])
        for sid in moved:  # the session an exit left: rare
            ref = refs.get(sid)
            if ref is None:
                sync()
                ref = self._conn.execute(
                    text("SELECT pk, practice, therapist FROM sessions WHERE id = :s"), {"s": sid}
                ).one()
            exit_sessions.append(ref[0])
        self.refresh(sessions, keys, exit_sessions, writer, sync)
        self._recent = new

    def _zone(self, practice: str) -> Days:
        found = self._days.get(practice)
        if found is None:
            zone = self._conn.execute(
                text("SELECT timezone FROM practices WHERE id = :p"), {"p": practice}
            ).scalar_one()
            found = self._days[practice] = Days(str(zone))
        return found

    def refresh(
        self,
        sessions: Iterable[tuple[int, str, str, int, int | None]],
        before: Iterable[SessionKey],
        exit_sessions: Iterable[int],
        writer: Writer | None,
        sync: Callable[[], None],
    ) -> None:
        """Recompute the keys of `sessions` (pk, practice, therapist, start, end: as written),
        of `before` (the same sessions' keys before the chunk changed them) and of the
        sessions `exit_sessions` (pks) of the exits written. `sync` waits for pending writes
        (before this reads)."""
        known = self._sessions
        if len(known) > self.CACHE_LIMIT:
            known.clear()
        starts: set[SessionKey] = set(before)
        for pk, practice, therapist, start, end in sessions:
            known[pk] = None if end is None else (practice, therapist, start)
            if end is not None:
                starts.add((practice, therapist, start))
        unknown: list[int] = []
        recent: dict[int, Row] | None = None
        for pk in set(exit_sessions):
            if pk in known:
                key = known[pk]
            else:
                if recent is None:  # the previous chunk's new sessions, by key
                    recent = {r[0]: r for r in self._recent}
                r = recent.get(pk)
                if r is None:
                    unknown.append(pk)
                    continue
                key = None if r[8] is None else (r[2], r[3], r[7])
            if key is not None:  # an exit of a session in progress counts once it ends
                starts.add(key)
        if unknown:
            sync()
            for pk, practice, therapist, start, end in self._conn.execute(
                text(
                    "SELECT pk, practice, therapist, start_us, end_us FROM sessions"
                    " WHERE pk IN :pks"
                ).bindparams(_expanding("pks")),
                {"pks": unknown},
            ):
                key = None if end is None else (practice, therapist, start)
                known[pk] = key
                if key is not None:
                    starts.add(key)
        if not starts:
            return
        if any(p not in self._days for p, _, _ in starts):
            sync()
        keys = self._keys(starts)
        run = statements(self._conn)
        for i in range(0, len(keys), KEYS_PER_STATEMENT):
            run.run(self._conn, writer, _json(keys[i : i + KEYS_PER_STATEMENT]))

    def _keys(self, starts: Iterable[SessionKey]) -> list[list[Any]]:
        seen: set[Key] = set()
        for practice, therapist, start in starts:
            seen.add((practice, therapist, self._zone(practice).of(start)))
        return [[p, t, d, *self._zone(p).bounds(d)] for p, t, d in sorted(seen)]


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def _json(keys: Sequence[Sequence[Any]]) -> str:
    return orjson.dumps(keys).decode()


# -- whole practices: backfill, verification ----------------------------------------------

_SETTLE_EVERY: Final = 50_000


def _tally_all(conn: Connection, practice: str | None = None) -> Tally:
    """The rollup rows of every ended session (of one practice, or all), tallied from the
    base tables."""
    where, params = ("", {}) if practice is None else (" AND practice = :p", {"p": practice})
    exits: dict[int, list[tuple[int, str | None, int, int | None]]] = {}
    for pk, session, reason, left, back in conn.execute(
        text(f"SELECT pk, session_pk, reason, left_us, returned_us FROM exits WHERE 1 = 1{where}"),
        params,
    ):
        exits.setdefault(session, []).append((pk, reason, left, back))
    zones = {p: Days(z) for p, z in conn.execute(text("SELECT id, timezone FROM practices"))}
    tally = Tally(conn)
    # Rows shaped as `fastrows.SESSION_COLUMNS`, without the columns the rollup does not read.
    result = conn.execute(
        text(
            "SELECT pk, NULL, practice, therapist, NULL, room, NULL, start_us, end_us,"
            f" billed_codes FROM sessions WHERE end_us IS NOT NULL{where}"
        ),
        params,
    )
    while part := result.fetchmany(_SETTLE_EVERY):
        tally.add_rows([tuple(r) for r in part], exits, zones.__getitem__)
        tally.settle(_nothing)
    return tally


def _nothing() -> None:
    pass


def refresh_practice(conn: Connection, practice: str | None = None) -> None:
    """Recompute the rollup of one practice (or of all) from the base tables: the
    migration's backfill, and what a change of a practice's zone would need."""
    where, params = ("", {}) if practice is None else (" WHERE practice = :p", {"p": practice})
    for table in (DAYS, WEEKS, EXITS):
        conn.execute(text(f"DELETE FROM {table}{where}"), params)
    _tally_all(conn, practice).write(None)


def rollup_mismatches(conn: Connection) -> list[str]:
    """Where the stored rollup differs from the base tables: one line per table and practice
    (ids and counts only). Empty when they agree."""
    tally = _tally_all(conn)
    problems: list[str] = []
    weeks: Counter[tuple[Any, ...]] = Counter()
    for (practice, day, therapist, room), counts in tally.days.items():
        for column, n in zip(DAY_COLUMNS[4:], counts, strict=True):
            weeks[practice, week_of(day), therapist, room, column] += n
    week_rows = {key[:4] for key in weeks}
    for table, columns, rows in (
        (DAYS, DAY_COLUMNS, [(*key, *counts) for key, counts in tally.days.items()]),
        (
            WEEKS,
            WEEK_COLUMNS,
            [(*key, *(weeks[(*key, c)] for c in DAY_COLUMNS[4:])) for key in week_rows],
        ),
        (EXITS, EXIT_COLUMNS, tally.exits),
    ):
        expected = Counter(tuple(r) for r in rows)
        stored = Counter(
            tuple(r) for r in conn.execute(text(f"SELECT {', '.join(columns)} FROM {table}"))
        )
        at = columns.index("practice")
        differ = Counter(str(r[at]) for r in (expected - stored) + (stored - expected))
        for practice, n in sorted(differ.items()):
            problems.append(
                f"{table}: practice {practice}: {n} rows differ from the base tables"
                " (stepout rebuild recomputes them)"
            )
    return problems
