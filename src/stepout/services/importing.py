"""Import JSON Lines records, all or nothing (DESIGN.md, "Records interchange").

Each line is parsed and checked on its own (`stepout.domain.validation`); this module adds the
checks across records: ids unique per kind within the file, references to a session in the file
(before or after) or in the store, an exit inside its session, and records that already exist
(the same values: a no-op; other values: an error). New records become `*.recorded` events, a
practice seen for the first time a `practice.created` event before its first session.

Lines are handled in chunks: one lookup of existing ids per chunk, one ledger append per chunk.
Memory holds compact facts per session (span, practice, line), the ids of exits and concerns,
and the exits and concerns whose session is not known yet, resolved at the end. After the first
error nothing more is appended, but every line is still checked so that all errors are reported;
the caller's unit of work is committed only when there is none.
"""

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson

from stepout.domain.events import Event
from stepout.domain.instants import Instant
from stepout.domain.interchange import concern_from_dict, exit_from_dict, session_from_dict
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.validation import Checked, LineError, check_record
from stepout.domain.validation.rejected import Rejected
from stepout.services.ports import UnitOfWork

CHUNK_SIZE: Final = 5_000
_BOM: Final = b"\xef\xbb\xbf"
_SKIP: Final[Any] = object()

# What the import keeps of a session: (start, end, practice).
Span = tuple[Instant, Instant | None, str]


class ImportRejected(Rejected[LineError]):
    """The file had errors; nothing was stored. `errors` holds all of them, in line order."""

    what = "import"


@dataclass(frozen=True)
class ImportReport:
    lines: int  # physical lines read, blank ones included
    created: dict[str, int]  # by kind: session, exit, concern, practice
    unchanged: int  # records already stored with the same values


def import_records(
    uow: UnitOfWork,
    lines: Iterable[bytes],
    *,
    actor: str = "import",
    progress: Callable[[int], None] | None = None,
    practice: str | None = None,
) -> ImportReport:
    """Import every record of `lines` in `uow` (entered by the caller) and commit it; or raise
    `ImportRejected` with every error and commit nothing. `progress` is told how many lines
    have been read after each chunk. With `practice`, every record must belong to that
    practice: a session of another is an error on its `practice`, and an exit or a concern of a
    stored session of another reads as naming an unknown session (its existence unconfirmed)."""
    with _gc_paused():
        return _import(uow, lines, actor, progress, practice)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: an import makes no reference cycles, but millions of
    short-lived objects, and each chunk it holds would trigger collections that scan the whole
    heap (a quarter of the import's time). Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import(
    uow: UnitOfWork,
    lines: Iterable[bytes],
    actor: str,
    progress: Callable[[int], None] | None,
    practice: str | None,
) -> ImportReport:
    run = _Run(uow, actor, practice)
    errors = run.errors
    chunk: list[Checked] = []
    loads = orjson.loads
    number = 0
    for number, raw in enumerate(lines, 1):
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError:
            obj = _recover(raw, number, errors)
            if obj is _SKIP:
                continue
        checked = check_record(obj, number, errors)
        if checked is None:
            run.note_broken(obj)
            continue
        chunk.append(checked)
        if len(chunk) >= CHUNK_SIZE:
            run.flush(chunk)
            chunk = []
            if progress is not None:
                progress(number)
    run.flush(chunk)
    run.finish()
    if progress is not None:
        progress(number)
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportRejected(errors)
    uow.commit()
    return ImportReport(lines=number, created=run.created, unchanged=run.unchanged)


def _recover(raw: bytes, number: int, errors: list[LineError]) -> Any:
    """A line orjson refused: blank (skipped), a byte order mark on line 1, or an error (whose
    column is reported without the line's end, so that a truncated line reads as such)."""
    text = raw.rstrip(b"\r\n")
    if not text.strip():
        return _SKIP
    if number == 1 and text.startswith(_BOM):
        text = text[len(_BOM) :]
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        errors.append(LineError(number, "json", f"{error.msg} at column {error.colno}"))
        return _SKIP


def _same(checked: Checked, stored: Session | Exit | Concern) -> bool:
    """Whether a checked record has the values of the stored one (as records: timestamps as
    instants, defaults filled, live-only fields such as an exit's expected minutes ignored)."""
    d = {"id": checked.id, **checked.data}
    if isinstance(stored, Session):
        return session_from_dict(d) == stored
    if isinstance(stored, Exit):
        return exit_from_dict(d) == replace(stored, expected_minutes=None)
    return concern_from_dict(d) == stored


class _Run:
    """The state of one import across its chunks."""

    def __init__(self, uow: UnitOfWork, actor: str, only: str | None = None) -> None:
        self.uow = uow
        self.actor = actor
        self.only = only  # the one practice the records may belong to (None: any)
        self.errors: list[LineError] = []
        self.created = {"session": 0, "exit": 0, "concern": 0, "practice": 0}
        self.unchanged = 0
        self.sessions: dict[str, tuple[Instant, Instant | None, str, int]] = {}  # in the file
        self.stored_sessions: dict[str, Span] = {}  # referenced, not in the file (so far)
        self.broken: set[str] = set()  # ids of session lines that failed their own checks
        self.seen: dict[str, dict[str, int]] = {"exit": {}, "concern": {}}  # id -> line
        self.practices: set[str] = set()  # known to exist (stored or created here)
        self.names: dict[str, str] = {}  # one string object per practice id
        self.held: list[Checked] = []  # exits and concerns whose session is not known yet

    def note_broken(self, obj: object) -> None:
        if type(obj) is dict and obj.get("kind") == "session" and type(obj.get("id")) is str:
            self.broken.add(obj["id"])

    def _error(self, c: Checked, field: str, message: str) -> None:
        self.errors.append(LineError(c.line, field, message))

    def _span(self, session_id: str) -> Span | None:
        fact = self.sessions.get(session_id)
        if fact is not None:
            return fact[0], fact[1], fact[2]
        return self.stored_sessions.get(session_id)

    def flush(self, chunk: list[Checked]) -> None:
        sessions: list[Checked] = []
        others: list[Checked] = []
        facts, names = self.sessions, self.names
        only = self.only
        for c in chunk:
            if c.kind == "session":
                if only is not None and c.ref != only:
                    message = f"is another practice; this import takes practice {only} only"
                    self._error(c, "practice", message)
                    self.broken.add(c.id)
                    continue
                first = facts.get(c.id)
                if first is not None:
                    self._error(c, "id", f"session {c.id} is also on line {first[3]}")
                    continue
                facts[c.id] = (c.at, c.end, names.setdefault(c.ref, c.ref), c.line)
                sessions.append(c)
            else:
                seen = self.seen[c.kind]
                line = seen.setdefault(c.id, c.line)
                if line != c.line:
                    self._error(c, "id", f"{c.kind} {c.id} is also on line {line}")
                    continue
                others.append(c)
        records = self.uow.records
        known = (self.sessions, self.stored_sessions, self.broken)
        refs = {c.ref for c in others if all(c.ref not in k for k in known)}
        wanted = [c.id for c in sessions] + list(refs)
        stored = records.sessions(wanted) if wanted else {}
        for ref in refs:
            if (s := stored.get(ref)) is not None and (only is None or s.practice == only):
                self.stored_sessions[ref] = (s.start, s.end, s.practice)
        exit_ids = [c.id for c in others if c.kind == "exit"]
        concern_ids = [c.id for c in others if c.kind == "concern"]
        exits = records.exits(exit_ids) if exit_ids else {}
        concerns = records.concerns(concern_ids) if concern_ids else {}
        foreign = self._foreign([*exits.values(), *concerns.values()])
        new_practices = {c.ref for c in sessions if c.ref not in self.practices}
        if new_practices:
            self.practices.update(records.practices(new_practices))
        events: list[Event] = []
        practices, actor, created = self.practices, self.actor, 0
        for c in sessions:
            old = stored.get(c.id) if stored else None
            if old is not None:
                self._existing(c, old)
                continue
            if c.ref not in practices:
                self._new_practice(c.ref, c.at, events)
            events.append(Event("session.recorded", c.ref, c.id, c.at, c.data, actor))
            created += 1
        self.created["session"] += created
        for c in others:
            existing = exits.get(c.id) if c.kind == "exit" else concerns.get(c.id)
            if existing is not None:
                self._existing(c, existing, (c.kind, c.id) in foreign)
            elif (span := self._span(c.ref)) is not None:
                self._new_other(c, span, events)
            elif c.ref not in self.broken:
                self.held.append(c)
        self._append(events)

    def finish(self) -> None:
        """Resolve the exits and concerns that named a session not known when they were read."""
        events: list[Event] = []
        for c in self.held:
            span = self._span(c.ref)
            if span is not None:
                self._new_other(c, span, events)
            elif c.ref not in self.broken:
                self._error(c, "session", f"session {c.ref} is neither in the file nor stored")
        self.held = []
        self._append(events)

    def _foreign(self, found: list[Exit | Concern]) -> set[tuple[str, str]]:
        """(kind, id) of the stored exits and concerns of a practice other than the one this
        import takes: never compared with the file's line, so that the answer cannot confirm
        another practice's values."""
        if self.only is None or not found:
            return set()
        owners = self.uow.records.sessions({r.session for r in found})
        return {
            ("exit" if isinstance(r, Exit) else "concern", r.id)
            for r in found
            if (s := owners.get(r.session)) is None or s.practice != self.only
        }

    def _existing(
        self, c: Checked, stored: Session | Exit | Concern, foreign: bool = False
    ) -> None:
        if not foreign and _same(c, stored):
            self.unchanged += 1
        else:
            message = f"{c.kind} {c.id} already exists with other values; amend it instead"
            self._error(c, "id", message)

    def _new_practice(self, practice: str, at: Instant, events: list[Event]) -> None:
        self.practices.add(practice)
        data = {"name": practice, "timezone": "UTC"}
        events.append(Event("practice.created", practice, practice, at, data, self.actor))
        self.created["practice"] += 1

    def _new_other(self, c: Checked, span: Span, events: list[Event]) -> None:
        start, end, practice = span
        if c.kind == "exit" and c.at < start:
            self._error(c, "left_at", f"is before the start of session {c.ref}")
        elif c.kind == "exit" and end is not None and c.at > end:
            self._error(c, "left_at", f"is after the end of session {c.ref}")
        else:
            events.append(Event(f"{c.kind}.recorded", practice, c.id, c.at, c.data, self.actor))
            self.created[c.kind] += 1

    def _append(self, events: list[Event]) -> None:
        if events and not self.errors:
            self.uow.ledger.append(events)
