"""Import a schedule, all or nothing (docs/schedules.md).

The readers (`stepout.adapters.schedule`) turn a CSV, iCalendar or FHIR file into entries;
each is checked on its own (`stepout.domain.schedule.check_planned`), then against the file
(an id appears once) and the store: the practice exists (and is the one the import takes),
the therapist is one of its therapists and the room one of its rooms (when a `Directory` is
given), and what the entry does to a stored appointment (`effect_of`): schedule, reschedule,
cancel, nothing, or refuse (a started appointment never changes). Every problem is reported;
with any, nothing is appended and `ScheduleRejected` is raised, so the caller's unit of work
is never committed. Otherwise the events are appended and the unit of work committed.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from stepout.domain.events import Event
from stepout.domain.instants import Instant, now
from stepout.domain.schedule import (
    CANCELLED,
    RESCHEDULED,
    SCHEDULED,
    Planned,
    Raw,
    ScheduleError,
    check_planned,
    effect_of,
    plan_data,
)
from stepout.domain.validation.rejected import Rejected
from stepout.services.ports import UnitOfWork

CHUNK_SIZE: Final = 5_000


class Directory(Protocol):
    """Who and what a practice has: its therapists' user ids and its rooms' ids."""

    def therapists(self, practice: str) -> set[str]: ...
    def rooms(self, practice: str) -> set[str]: ...


class ScheduleRejected(Rejected[ScheduleError]):
    """The file had errors; nothing was stored. `errors` holds all of them, in file order."""

    what = "schedule"


@dataclass
class ScheduleReport:
    appointments: int = 0  # entries read
    effects: dict[str, int] = field(
        default_factory=lambda: {"schedule": 0, "reschedule": 0, "cancel": 0, "unchanged": 0,
                                 "skip": 0}
    )  # fmt: skip


def import_schedule(
    uow: UnitOfWork,
    entries: Iterable[Raw],
    *,
    practice: str | None = None,
    directory: Directory | None = None,
    actor: str = "import",
    clock: Callable[[], Instant] = now,
    progress: Callable[[int], None] | None = None,
) -> ScheduleReport:
    """Import `entries` in `uow` (entered by the caller) and commit; or raise
    `ScheduleRejected` with every error and commit nothing. With `practice`, every entry must
    belong to it. Entries are handled a chunk at a time (memory stays bounded by a chunk and
    an id per entry); after the first error nothing more is appended, but every entry is
    still checked. `progress` is told how many entries have been read after each chunk."""
    run = _Run(uow, directory, actor, clock())
    chunk: list[Planned] = []
    for raw in entries:
        run.report.appointments += 1
        if practice is not None and raw.fields and not raw.fields.get("practice"):
            raw = replace(raw, fields={**raw.fields, "practice": practice})
        checked, found = check_planned(raw)
        if found:
            run.errors.extend((_order(raw.order, e), e) for e in found)
        if checked is None:
            continue
        a = checked.appointment
        if practice is not None and a.practice != practice:
            message = f"is another practice; this import takes practice {practice} only"
            run.error(checked, "practice", message)
            continue
        seen = run.first_place.setdefault(a.id, raw.place)
        if seen != raw.place:
            run.error(checked, "id", f"is also at {seen}")
            continue
        chunk.append(checked)
        if len(chunk) >= CHUNK_SIZE:
            run.flush(chunk)
            chunk = []
            if progress is not None:
                progress(run.report.appointments)
    run.flush(chunk)
    if progress is not None:
        progress(run.report.appointments)
    if run.errors:
        run.errors.sort(key=lambda pair: pair[0])
        raise ScheduleRejected([e for _, e in run.errors])
    uow.commit()
    return run.report


class _Run:
    """The state of one import across its chunks."""

    def __init__(
        self, uow: UnitOfWork, directory: Directory | None, actor: str, at: Instant
    ) -> None:
        self.uow = uow
        self.directory = directory
        self.actor = actor
        self.at = at  # every event's instant: when the schedule was imported
        self.errors: list[tuple[tuple[int, int], ScheduleError]] = []
        self.first_place: dict[str, str] = {}  # id -> where the file first names it
        self.practices: set[str] = set()  # known to exist
        self.report = ScheduleReport()

    def error(self, p: Planned, field: str, message: str) -> None:
        place, name = p.where(field)
        error = ScheduleError(place, name, message)
        self.errors.append((_order(p.order, error), error))

    def flush(self, chunk: list[Planned]) -> None:
        if not chunk:
            return
        records = self.uow.records
        wanted = {p.appointment.practice for p in chunk} - self.practices
        if wanted:
            self.practices.update(records.practices(wanted))
        ids = [p.appointment.id for p in chunk]
        stored = records.appointments(ids)
        started = set(records.sessions(ids))
        events: list[Event] = []
        effects, at, actor = self.report.effects, self.at, self.actor
        for p in chunk:
            a = p.appointment
            if a.practice not in self.practices:
                self.error(p, "practice", "is not a practice")
                continue
            if self.directory is not None and not self._in_directory(p, self.directory):
                continue
            effect, problem = effect_of(p, stored.get(a.id), a.id in started)
            if problem is not None:
                self.error(p, "id", problem)
                continue
            effects[effect] += 1
            if effect == "schedule":
                data = {"practice": a.practice, **plan_data(a)}
                events.append(Event(SCHEDULED, a.practice, a.id, at, data, actor))
            elif effect == "reschedule":
                events.append(Event(RESCHEDULED, a.practice, a.id, at, plan_data(a), actor))
            elif effect == "cancel":
                events.append(Event(CANCELLED, a.practice, a.id, at, {}, actor))
        if events and not self.errors:
            self.uow.ledger.append(events)

    def _in_directory(self, p: Planned, directory: Directory) -> bool:
        a = p.appointment
        ok = True
        if a.therapist not in directory.therapists(a.practice):
            self.error(p, "therapist", "is not a therapist here")
            ok = False
        if a.room not in directory.rooms(a.practice):
            self.error(p, "room", "is not a room of the practice")
            ok = False
        return ok


def _order(order: tuple[int, int], error: ScheduleError) -> tuple[int, int]:
    """Where an error sorts: its entry's place, then the line it names within the entry."""
    line = error.place.removeprefix("line ")
    return (order[0], int(line)) if line.isdigit() else order
