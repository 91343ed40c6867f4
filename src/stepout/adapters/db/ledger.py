"""The ledger on SQL: chain new entries onto the head, store them, and verify the chain.

Appends are serialised by the write transaction they run in (BEGIN IMMEDIATE on SQLite, an
advisory lock on PostgreSQL: see `engine`), so the head read at the first append of a
transaction stays the head until it commits, and two writers never fork the chain.

On SQLite a writing unit of work hands the inserts to a `Writer` thread. A large append
(`DEFER_FROM` events or more) returns while its last writes are still running, its savepoint
open; the next barrier (`settle`: the next append, read, commit) waits for them and, if they
failed, rolls the savepoint back and raises the error there (an `EvolveError` when a
constraint held), as `append` would have.

Free text is sealed (`fieldcrypt`) just before chaining: `events.data` holds ciphertext, the
chain's HMAC covers it, and the projections copy it as it is.
"""

import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import orjson
from sqlalchemy import Connection, NestedTransaction, select

from stepout.adapters.db.bulk import Writer, insert_rows, integrity_errors
from stepout.adapters.db.fieldcrypt import FieldCrypt
from stepout.adapters.db.projection import Projector
from stepout.adapters.db.queries import SqlRecords
from stepout.adapters.db.rows import stream
from stepout.adapters.db.tables import EventRow
from stepout.crypto.keys import Keys
from stepout.domain.chain import (
    GENESIS,
    LedgerEntry,
    VerifyResult,
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
    events: Sequence[Event], head: Head, recorded_us: int, key: bytes
) -> tuple[list[tuple[Any, ...]], Head]:
    """The rows of `events` chained onto `head` with the chain `key`, and the new head."""
    # `stepout.domain.chain.canonical_data`, `canonical_entry` and `entry_hash`, inlined for
    # the hot path (a test compares them).
    rows: list[tuple[Any, ...]] = []
    add, dumps, fragment = rows.append, orjson.dumps, orjson.Fragment
    mac = hmac.new(key, digestmod=hashlib.sha256)  # copied per entry: the key is set up once
    sort_keys = orjson.OPT_SORT_KEYS
    seq, prev = head.seq, head.hash
    for kind, practice, subject, at, event_data, actor in events:  # an Event is a NamedTuple
        seq += 1
        data = dumps(event_data, option=sort_keys)
        entry = dumps([seq, kind, practice, subject, at, actor, fragment(data), recorded_us])
        entry_mac = mac.copy()
        entry_mac.update(prev.encode() + entry)
        digest = entry_mac.hexdigest()
        add((seq, recorded_us, kind, practice, subject, at, actor, data.decode(), prev, digest))
        prev = digest
    return rows, Head(seq, prev)


def store(conn: Connection, rows: Sequence[tuple[Any, ...]], writer: Writer | None = None) -> None:
    insert_rows(conn, "events", COLUMNS, rows, writer)


def entries(conn: Connection) -> Iterator[LedgerEntry]:
    """Every entry, in `seq` order, streamed."""
    make = LedgerEntry._make
    for row in stream(conn, select(*(E[c] for c in COLUMNS)).order_by(E.seq)):
        yield make(row)


def event_of(entry: LedgerEntry) -> Event:
    return Event(
        entry.kind, entry.practice, entry.subject, entry.at, orjson.loads(entry.data), entry.actor
    )


def verify(conn: Connection, key: bytes) -> VerifyResult:
    return verify_chain(entries(conn), key)


class ReadOnlyError(RuntimeError):
    """An append in a unit of work opened for reading."""


class SqlLedger:
    """The Ledger port: chain, store and project events, in the unit of work's transaction.

    Each `append` runs in a savepoint: an event that does not apply (`EvolveError`, including
    an id that already exists) leaves no trace, and the unit of work stays usable."""

    CHUNK: Final = 5_000  # events chained, stored and projected per round
    DEFER_FROM: Final = 1_000  # appends from this size may leave their writes pending
    BULK_FROM: Final = 64  # appends from this size insert on the writer's thread

    def __init__(
        self,
        conn: Connection,
        keys: Keys,
        *,
        writable: bool = True,
        writer: Writer | None = None,
    ) -> None:
        self._conn = conn
        self._keys = keys
        self._writable = writable
        self._writer = writer
        self.crypt = FieldCrypt(conn, keys, None if writer is None else writer.drain)
        self._projector = Projector(conn, writer)
        self._head: Head | None = None
        self._integrity = integrity_errors(conn)
        self._pending: tuple[NestedTransaction, Sequence[Event]] | None = None

    def reset(self) -> None:
        """Forget what this transaction knew (after a commit or a rollback)."""
        self._forget()
        self.crypt.end_transaction()

    def _forget(self) -> None:
        self._head = None
        self._pending = None
        self._projector.reset()

    def settle(self) -> None:
        """Wait for the writes a large append left pending; if they failed, roll its savepoint
        back and raise why. Call before anything else uses the connection."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        savepoint, events = pending
        assert self._writer is not None
        try:
            self._writer.drain()
        except BaseException as exc:
            self._abandon(savepoint, events, exc)
        savepoint.commit()

    def discard(self) -> None:
        """Wait for pending writes and forget them and their errors (before a rollback)."""
        if self._writer is not None:
            self._writer.discard()
        self._pending = None

    def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        if not self._writable:
            raise ReadOnlyError("this unit of work was opened read-only: it cannot append")
        self.settle()
        # A few events (the live workflow) are written here; only bulk appends (imports) go to
        # the writer's thread, whose hand-over costs more than a few rows' inserts.
        bulk = len(events) >= self.BULK_FROM
        conn, writer = self._conn, self._writer if bulk else None
        savepoint = conn.begin_nested()
        try:
            head = self._head or read_head(conn)
            recorded = now()
            for i in range(0, len(events), self.CHUNK):
                chunk = self.crypt.seal_events(events[i : i + self.CHUNK], head.seq + 1)
                rows, after = chain(chunk, head, recorded, self._keys.chain_key)
                store(conn, rows, writer)
                self._projector.apply(chunk, range(head.seq + 1, after.seq + 1), bulk=bulk)
                head = after
            deferred = writer is not None and len(events) >= self.DEFER_FROM
            if writer is not None and not deferred:
                writer.drain()
        except BaseException as exc:
            self._abandon(savepoint, events, exc)
        self._head = head
        if deferred:
            self._pending = (savepoint, events)  # `settle` drains, then releases it
        else:
            savepoint.commit()

    def _abandon(
        self, savepoint: NestedTransaction, events: Sequence[Event], exc: BaseException
    ) -> NoReturn:
        if self._writer is not None:
            self._writer.discard()
        savepoint.rollback()
        self._forget()
        self.crypt.savepoint_rolled_back()
        if isinstance(exc, self._integrity):
            raise explain(self._conn, events, exc, self.crypt) from exc
        raise exc


def explain(
    conn: Connection, events: Sequence[Event], exc: BaseException, crypt: FieldCrypt
) -> EvolveError:
    """Why the database refused `events` (a constraint held), as an EvolveError."""
    records = SqlRecords(conn, crypt)
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
