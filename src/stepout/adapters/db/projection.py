"""The projections: `stepout.domain.events.evolve` folded over the ledger, into tables.

Events are applied a chunk at a time: the stored records that the chunk's updates need are
loaded with a few queries, the chunk is folded in memory, and the results are written with
one bulk insert or update per table. Row keys (`pk`) are handed out here, in ledger order, so
that replaying the ledger (`rebuild`) reproduces every row. Live appends and rebuilds run
this same code.

After each chunk's writes, the dashboard's rollup (`rollup.Rollup`) is brought up to date with
what the chunk touched, in the same transaction.

One shortcut, for imports of millions of records: a `*.recorded` event that nothing else in
its chunk touches becomes its row straight from its data (`fastrows`), without the record in
between. A test pins that both ways give the same row.
"""

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Connection, func, select, text

from stepout.adapters.db import appointments, reviews
from stepout.adapters.db import rows as r
from stepout.adapters.db.bulk import Writer, insert_rows, update_rows
from stepout.adapters.db.fastrows import (
    CONCERN_COLUMNS,
    EXIT_COLUMNS,
    PRACTICE_COLUMNS,
    SESSION_COLUMNS,
    SHORTCUTS,
    Row,
    SessionRef,
    concern_from_data,
    concern_row,
    exit_from_data,
    exit_row,
    session_from_data,
    session_row,
)
from stepout.adapters.db.rollup import Rollup
from stepout.adapters.db.tables import ConcernRow, ExitRow, SessionRow
from stepout.domain.chain import canonical_data
from stepout.domain.events import CREATES, Event, EvolveError, Record, evolve
from stepout.domain.practice import Practice
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.reviews import REVIEW_KINDS
from stepout.domain.schedule import APPOINTMENT_KINDS

AMENDMENT_COLUMNS: Final = ("seq", "entity", "subject", "at_us", "note", "changes")
TABLES: Final = {"session": "sessions", "exit": "exits", "concern": "concerns"}
COLUMNS: Final = {"session": SESSION_COLUMNS, "exit": EXIT_COLUMNS, "concern": CONCERN_COLUMNS}
REFS_LIMIT: Final = 250_000  # session refs kept from one chunk to the next

Key = tuple[str, str]  # entity, id


class Slot:
    """A record the chunk folds through `evolve`, its row key, and whether it is new."""

    __slots__ = ("new", "pk", "record")

    def __init__(self, pk: int, record: Record | None, new: bool) -> None:
        self.pk = pk
        self.record = record
        self.new = new


class Chunk:
    """What folding one chunk produced, ready to write."""

    def __init__(self) -> None:
        self.slots: dict[Key, Slot] = {}
        self.rows: dict[str, list[Row]] = {"session": [], "exit": [], "concern": []}
        # Shortcut rows whose session ref is not known yet: entity, pk, id, data, session.
        self.waiting: list[tuple[str, int, str, dict[str, Any], str]] = []
        self.amendments: list[Row] = []
        self.moved: dict[int, tuple[str, str]] = {}  # session pk -> its new practice, therapist


class Projector:
    """Applies events to the projection tables, on one connection.

    Keeps the next row keys and a cache of session refs (pk, practice, therapist) for the
    exits and concerns to come; `reset()` forgets both (after a commit or a rollback).

    With a `writer`, inserts run on its thread; reads and updates wait for them first."""

    def __init__(self, conn: Connection, writer: Writer | None = None) -> None:
        self._conn = conn
        self._writer = writer
        self._next: dict[str, int] | None = None
        self._refs: dict[str, SessionRef] = {}
        self._bulk = True
        self._rollup = Rollup(conn)  # the dashboard's, recomputed after each chunk's writes

    def reset(self) -> None:
        self._next = None
        self._refs = {}
        self._rollup.reset()

    def apply(self, events: Sequence[Event], seqs: Sequence[int], *, bulk: bool = True) -> None:
        """Fold `events` (ledger entries `seqs`) into the tables; with `bulk` false, insert
        here rather than on the writer's thread (a few rows are not worth the hand-over)."""
        self._bulk = bulk
        if any(e.kind in APPOINTMENT_KINDS for e in events):
            # An appointment is no record either: its own table (`appointments`), after the rest.
            pairs = list(zip(events, seqs, strict=True))
            rest = [(e, seq) for e, seq in pairs if e.kind not in APPOINTMENT_KINDS]
            if rest:
                self.apply([e for e, _ in rest], [seq for _, seq in rest], bulk=bulk)
            self._sync()
            planned = [(e, seq) for e, seq in pairs if e.kind in APPOINTMENT_KINDS]
            writer = self._writer if bulk else None
            appointments.project(
                self._conn, [e for e, _ in planned], [seq for _, seq in planned], writer
            )
            return
        if any(e.kind in REVIEW_KINDS for e in events):
            # A finding's review is no record: its own table (`reviews`), after the rest.
            kept = [(e, seq) for e, seq in zip(events, seqs, strict=True)]
            rest = [(e, seq) for e, seq in kept if e.kind not in REVIEW_KINDS]
            if rest:
                self.apply([e for e, _ in rest], [seq for _, seq in rest], bulk=bulk)
            self._sync()
            found = [(e, seq) for e, seq in kept if e.kind in REVIEW_KINDS]
            reviews.project(self._conn, [e for e, _ in found], [seq for _, seq in found])
            return
        if self._next is None:
            self._next = self._read_next()
        if len(self._refs) > REFS_LIMIT:
            self._refs = {}
        wanted = {(e.entity, e.subject) for e in events if e.kind not in CREATES}
        chunk = Chunk()
        self._load(wanted, chunk.slots)
        before = self._rollup.keys_before(chunk.slots.values())
        self._fold(events, seqs, wanted, chunk)
        self._resolve_sessions(chunk)
        self._write(chunk)
        writer = self._writer if self._bulk else None
        self._rollup.after_write(
            chunk.slots.values(), chunk.rows, self._refs, before, writer, self._sync
        )

    def _sync(self) -> None:
        """Wait for the writer's pending inserts (before the connection is used here)."""
        if self._writer is not None:
            self._writer.drain()

    def _read_next(self) -> dict[str, int]:
        self._sync()
        if self._conn.dialect.name == "postgresql":
            # The top keys of every practice, past the tenant wall (migration 0007): a writer
            # scoped to one practice numbers its rows after all the others'.
            top = self._conn.execute(text("SELECT * FROM stepout_top_pks()")).one()
        else:
            top = self._conn.execute(
                select(
                    select(func.max(SessionRow.pk)).scalar_subquery(),
                    select(func.max(ExitRow.pk)).scalar_subquery(),
                    select(func.max(ConcernRow.pk)).scalar_subquery(),
                )
            ).one()
        return {e: (pk or 0) + 1 for e, pk in zip(("session", "exit", "concern"), top, strict=True)}

    def _load(self, wanted: set[Key], slots: dict[Key, Slot]) -> None:
        """The stored records that the chunk's non-creating events apply to."""
        if not wanted:
            return
        self._sync()
        ids: dict[str, list[str]] = {}
        for entity, subject in wanted:
            ids.setdefault(entity, []).append(subject)
        conn, refs = self._conn, self._refs
        for row in r.rows_by_id(conn, r.SESSIONS_BY_ID, ids.get("session", ())):
            s = r.session_of(row)
            slots["session", s.id] = Slot(row[0], s, new=False)
            refs[s.id] = (row[0], s.practice, s.therapist)
        for row in r.rows_by_id(conn, r.EXITS_BY_ID, ids.get("exit", ())):
            slots["exit", row[1]] = Slot(row[0], r.exit_of(row), new=False)
        for row in r.rows_by_id(conn, r.CONCERNS_BY_ID, ids.get("concern", ())):
            slots["concern", row[1]] = Slot(row[0], r.concern_of(row), new=False)
        for row in r.rows_by_id(conn, r.PRACTICES_BY_ID, ids.get("practice", ())):
            slots["practice", row[0]] = Slot(0, r.practice_of(row), new=False)

    def _fold(
        self, events: Sequence[Event], seqs: Sequence[int], wanted: set[Key], chunk: Chunk
    ) -> None:
        assert self._next is not None
        counters, refs, rows = self._next, self._refs, chunk.rows
        sessions, exits, concerns = rows["session"], rows["exit"], rows["concern"]
        for e, seq in zip(events, seqs, strict=True):
            entity = SHORTCUTS.get(e.kind)
            if entity is not None and (not wanted or (entity, e.subject) not in wanted):
                # A new record that nothing else in the chunk touches: straight to its row.
                pk = counters[entity]
                counters[entity] = pk + 1
                d = e.data
                if entity == "session":
                    row = session_from_data(pk, e.subject, d)
                    refs[e.subject] = (pk, row[2], row[3])
                    sessions.append(row)
                    continue
                ref = refs.get(d["session"])
                if ref is None:
                    chunk.waiting.append((entity, pk, e.subject, d, d["session"]))
                elif entity == "exit":
                    exits.append(exit_from_data(pk, e.subject, d, ref))
                else:
                    concerns.append(concern_from_data(pk, e.subject, d, ref))
                continue
            self._evolve(e, seq, chunk)

    def _evolve(self, e: Event, seq: int, chunk: Chunk) -> None:
        """Fold one event the long way: the record through `evolve`."""
        assert self._next is not None
        entity, subject = e.entity, e.subject
        slot = chunk.slots.get((entity, subject))
        before = None if slot is None else slot.record
        record = evolve(before, e)
        if record.id != subject:
            raise EvolveError(f"{e.kind}: {subject} cannot become {record.id}")
        if slot is None:
            pk = self._next.get(entity, 0)
            if entity in self._next:
                self._next[entity] = pk + 1
            chunk.slots[entity, subject] = slot = Slot(pk, record, new=True)
        else:
            slot.record = record
        if isinstance(record, Session):
            self._refs[subject] = (slot.pk, record.practice, record.therapist)
            if isinstance(before, Session) and (before.practice, before.therapist) != (
                record.practice,
                record.therapist,
            ):
                chunk.moved[slot.pk] = (record.practice, record.therapist)
        if e.kind.endswith(".amended"):
            changes = canonical_data(e.data.get("changes") or {}).decode()
            chunk.amendments.append((seq, entity, subject, e.at, e.data.get("note"), changes))

    def _resolve_sessions(self, chunk: Chunk) -> None:
        """Look up the refs of the sessions that the chunk's exits and concerns name and
        that this unit of work has not seen yet; then finish the waiting rows."""
        refs = self._refs
        named = [(w[4], f"{w[0]} {w[2]}") for w in chunk.waiting]
        for slot in chunk.slots.values():
            rec = slot.record
            if isinstance(rec, Exit | Concern):
                named.append((rec.session, f"{type(rec).__name__.lower()} {rec.id}"))
        missing: dict[str, str] = {}
        for sid, what in named:
            if sid not in refs and sid not in missing:
                missing[sid] = what
        if missing:
            self._sync()
            for row in r.rows_by_id(self._conn, r.SESSION_REFS_BY_ID, missing):
                refs[row[0]] = (row[1], row[2], row[3])
            for sid, what in missing.items():
                if sid not in refs:
                    raise EvolveError(f"{what}: session {sid} does not exist")
        for entity, pk, subject, d, sid in chunk.waiting:
            if entity == "exit":
                chunk.rows["exit"].append(exit_from_data(pk, subject, d, refs[sid]))
            else:
                chunk.rows["concern"].append(concern_from_data(pk, subject, d, refs[sid]))

    def _write(self, chunk: Chunk) -> None:
        refs, new = self._refs, chunk.rows
        new_practices: list[Row] = []
        changed: dict[str, list[Row]] = {"practice": [], "session": [], "exit": [], "concern": []}
        for (entity, _), slot in chunk.slots.items():
            rec, pk = slot.record, slot.pk
            if isinstance(rec, Session):
                row = session_row(pk, rec)
            elif isinstance(rec, Exit):
                row = exit_row(pk, rec, refs[rec.session])
            elif isinstance(rec, Concern):
                row = concern_row(pk, rec, refs[rec.session])
            else:
                assert isinstance(rec, Practice)
                row = (rec.id, rec.name, rec.timezone)
            if not slot.new:
                changed[entity].append((*row[1:], row[0]))
            elif entity == "practice":
                new_practices.append(row)
            else:
                new[entity].append(row)
        conn, writer = self._conn, self._writer if self._bulk else None
        if any(changed.values()) or chunk.moved:
            self._sync()  # updates run here, after the inserts before them
            writer = None
        insert_rows(conn, "practices", PRACTICE_COLUMNS, new_practices, writer)
        update_rows(conn, "practices", PRACTICE_COLUMNS[1:], "id", changed["practice"])
        for entity, table in TABLES.items():
            columns = COLUMNS[entity]
            insert_rows(conn, table, columns, new[entity], writer)
            update_rows(conn, table, columns[1:], "pk", changed[entity])
        insert_rows(conn, "amendments", AMENDMENT_COLUMNS, chunk.amendments, writer)
        if chunk.moved:
            moved = [(practice, therapist, pk) for pk, (practice, therapist) in chunk.moved.items()]
            update_rows(conn, "exits", ("practice", "therapist"), "session_pk", moved)
            by_practice = [(practice, pk) for practice, _, pk in moved]
            update_rows(conn, "concerns", ("practice",), "session_pk", by_practice)
