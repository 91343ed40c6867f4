"""The ledger on SQL: chain new entries onto the head, store them, and verify the chain.

Appends are serialised by the write transaction they run in (BEGIN IMMEDIATE on SQLite, an
advisory lock on PostgreSQL: see `engine`), so the head read at the first append of a
transaction stays the head until it commits, and two writers never fork the chain.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, select

from stepout.adapters.db.bulk import insert_rows, integrity_errors
from stepout.adapters.db.projection import Projector
from stepout.adapters.db.queries import SqlRecords
from stepout.adapters.db.rows import stream
from stepout.adapters.db.tables import EventRow
from stepout.domain.chain import (
    GENESIS,
    LedgerEntry,
    VerifyResult,
    canonical_data,
    canonical_entry,
    entry_hash,
    verify_chain,
)
from stepout.domain.events import CREATES, Event, EvolveError
from stepout.domain.instants import now

E: Final = EventRow.__table__.c
COLUMNS: Final = (
    "seq", "recorded_us", "kind", "practice", "subject", "at_us", "actor", "data",
    "prev_hash", "hash",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Head:
    seq: int = 0
    hash: str = GENESIS


def read_head(conn: Connection) -> Head:
    row = conn.execute(select(E.seq, E.hash).order_by(E.seq.desc()).limit(1)).first()
    return Head() if row is None else Head(row[0], row[1])


def chain(
    events: Sequence[Event], head: Head, recorded_us: int
) -> tuple[list[tuple[Any, ...]], Head]:
    """The rows of `events` chained onto `head`, and the new head."""
    rows: list[tuple[Any, ...]] = []
    seq, prev = head.seq, head.hash
    for e in events:
        seq += 1
        data = canonical_data(e.data)
        digest = entry_hash(
            prev,
            canonical_entry(seq, e.kind, e.practice, e.subject, e.at, e.actor, data, recorded_us),
        )
        rows.append(
            (seq, recorded_us, e.kind, e.practice, e.subject, e.at, e.actor, data.decode(), prev,
             digest)
        )  # fmt: skip
        prev = digest
    return rows, Head(seq, prev)


def store(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    insert_rows(conn, "events", COLUMNS, rows)


def entries(conn: Connection) -> Iterator[LedgerEntry]:
    """Every entry, in `seq` order, streamed."""
    make = LedgerEntry._make
    for row in stream(conn, select(*(E[c] for c in COLUMNS)).order_by(E.seq)):
        yield make(row)


def event_of(entry: LedgerEntry) -> Event:
    return Event(
        entry.kind, entry.practice, entry.subject, entry.at, orjson.loads(entry.data), entry.actor
    )


def verify(conn: Connection) -> VerifyResult:
    return verify_chain(entries(conn))


class ReadOnlyError(RuntimeError):
    """An append in a unit of work opened for reading."""


class SqlLedger:
    """The Ledger port: chain, store and project events, in the unit of work's transaction.

    Each `append` runs in a savepoint: an event that does not apply (`EvolveError`, including
    an id that already exists) leaves no trace, and the unit of work stays usable."""

    CHUNK: Final = 5_000  # events chained, stored and projected per round

    def __init__(self, conn: Connection, *, writable: bool = True) -> None:
        self._conn = conn
        self._writable = writable
        self._projector = Projector(conn)
        self._head: Head | None = None
        self._integrity = integrity_errors(conn)

    def reset(self) -> None:
        """Forget what this transaction knew (after a commit or a rollback)."""
        self._head = None
        self._projector.reset()

    def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        if not self._writable:
            raise ReadOnlyError("this unit of work was opened read-only: it cannot append")
        conn = self._conn
        savepoint = conn.begin_nested()
        try:
            head = self._head or read_head(conn)
            recorded = now()
            for i in range(0, len(events), self.CHUNK):
                chunk = events[i : i + self.CHUNK]
                rows, after = chain(chunk, head, recorded)
                store(conn, rows)
                self._projector.apply(chunk, range(head.seq + 1, after.seq + 1))
                head = after
        except BaseException as exc:
            savepoint.rollback()
            self.reset()
            if isinstance(exc, self._integrity):
                raise explain(conn, events, exc) from exc
            raise
        savepoint.commit()
        self._head = head


def explain(conn: Connection, events: Sequence[Event], exc: BaseException) -> EvolveError:
    """Why the database refused `events` (a constraint held), as an EvolveError."""
    records = SqlRecords(conn)
    lookups: dict[str, Callable[[Iterable[str]], dict[str, Any]]] = {
        "practice": records.practices,
        "session": records.sessions,
        "exit": records.exits,
        "concern": records.concerns,
    }
    creates = [e for e in events if e.kind in CREATES]
    stored: dict[str, set[str]] = {
        entity: set(lookup({e.subject for e in creates if e.entity == entity}))
        for entity, lookup in lookups.items()
    }
    seen: set[tuple[str, str]] = set()
    for e in creates:
        key = (e.entity, e.subject)
        if key in seen or e.subject in stored[e.entity]:
            return EvolveError(f"{e.kind}: {e.subject} already exists")
        seen.add(key)
    practices = stored["practice"] | {s for entity, s in seen if entity == "practice"}
    named = {e.data.get("practice") for e in creates if e.entity == "session"} - practices
    practices |= set(records.practices(p for p in named if isinstance(p, str)))
    for e in creates:
        if e.entity == "session" and e.data.get("practice") not in practices:
            return EvolveError(f"{e.kind}: {e.subject}: practice {e.data.get('practice')} "
                               "does not exist")  # fmt: skip
    return EvolveError(f"the events do not apply: {getattr(exc, 'orig', exc)}")
