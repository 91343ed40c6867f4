"""The presence service: one practice's detector of exits nobody declared, fed by the edges.

The MQTT consumer (`stepout sensors run`) and the presence API (`POST /api/v1/presence`) hand
it observations (`observe`, from their own threads) and let time pass (`tick`, about twice a
second). Observations only touch memory: the detector (`stepout.domain.detection`) decides.
Each decision is a unit of work through the workflow (`DetectExit`, `SensorReturn`, with the
sensor service as the audited caller: actor `sensor`, channel `sensor`); after it commits, the
session's room display and therapist's screens are told (`on_change`).

The database is touched when an exit begins or ends, and to refresh the sessions in progress
(one indexed query every `refresh_every`, 2 s by default, or at the next tick after
`sessions_changed()`), so that a session started after the service is watched within seconds.

A decision whose write fails (the database is away) waits and is tried again, in order, after
a pause that doubles from half a second to 30 s, up to `ATTEMPTS` times (about three and a
half minutes); one the protocol refuses (the session ended
meanwhile) is counted, recorded in the audit trail as failed, and dropped. Logs name protocol
codes and counts, never a person.
"""

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Final

from stepout.domain.commands import DetectExit, SensorReturn
from stepout.domain.detection import Decision, Detector, ExitBegins, Thresholds, Watched
from stepout.domain.instants import MICROS_PER_SECOND, Instant, now
from stepout.domain.presence import CallPresence, Observation, SensorsConfig
from stepout.domain.protocol import ProtocolError
from stepout.domain.records import Session
from stepout.services import ids
from stepout.services.audit import FAILED, Caller, action_of, target_of, write_alone
from stepout.services.workflow import Clock, IdMaker, UnitOfWorkFactory, Workflow

log = logging.getLogger(__name__)

SENSOR_ACTOR: Final = "sensor"
REFRESH_EVERY: Final = 2 * MICROS_PER_SECOND
ATTEMPTS: Final = 12  # with the pauses below, about three and a half minutes of trying
RETRY_FIRST: Final = MICROS_PER_SECOND // 2  # then doubling, up to RETRY_MOST
RETRY_MOST: Final = 30 * MICROS_PER_SECOND
TICK_SECONDS: Final = 0.5


@dataclass(slots=True)
class PresenceStats:
    """Counts since the service started, for monitoring."""

    observations: int = 0  # handed to `observe`
    ignored: int = 0  # of another practice, a client's call events, ...
    stale: int = 0  # duplicates, or older than their source's last (the detector's count)
    late: int = 0  # applied after the reorder window
    exits_begun: int = 0  # sensor exits recorded
    exits_ended: int = 0  # sensor exits closed by the badge (or call) back
    merged: int = 0  # decisions that changed nothing: the absence was already recorded
    refused: int = 0  # decisions the protocol refused (the session had ended, ...)
    failed: int = 0  # writes that failed (tried again)
    sessions_watched: int = 0
    pending: int = 0  # decisions waiting to be written


class PresenceService:
    """Implements `stepout.domain.presence.PresenceSink` for one practice. Thread-safe."""

    def __init__(
        self,
        config: SensorsConfig,
        uow: UnitOfWorkFactory,
        *,
        read_uow: UnitOfWorkFactory | None = None,
        clock: Clock = now,
        on_change: Callable[[Session], None] | None = None,
        thresholds: Thresholds | None = None,
        refresh_every: Instant = REFRESH_EVERY,
        origin: str = "sensors",
        new_id: IdMaker = ids.new_id,
    ) -> None:
        self.config = config
        self.practice = config.practice
        self._uow = uow
        self._read = read_uow or uow
        self._workflow = Workflow(uow, clock, new_id)
        self._clock = clock
        self._on_change = on_change
        self._refresh_every = refresh_every
        self._caller = Caller(SENSOR_ACTOR, config.practice, origin, "sensor")
        self._detector = Detector(thresholds or Thresholds.of(config), since=clock())
        self._stats = PresenceStats()
        self._detecting = threading.Lock()  # the detector and the counts
        self._ticking = threading.Lock()  # one tick (and its writes) at a time
        self._pending: deque[tuple[Decision, int, Instant]] = deque()  # attempts, next try
        self._refreshed: Instant | None = None
        self._changed = threading.Event()
        self._sessions: dict[str, Session] = {}

    # -- PresenceSink

    def observe(self, observation: Observation) -> None:
        with self._detecting:
            self._stats.observations += 1
            if isinstance(observation, CallPresence) and observation.practice != self.practice:
                self._stats.ignored += 1
                return
            self._detector.observe(observation)

    def tick(self, now: Instant) -> None:
        with self._ticking:
            # Timeouts first: an exit due now is not kept waiting behind the refresh's query.
            with self._detecting:
                decisions = self._detector.tick(now)
            self._pending.extend((d, 0, now) for d in decisions)
            self._write_pending(now)
            if self._refresh_due(now):
                sessions = self._load()
                with self._detecting:
                    decisions = self._detector.watch(sessions) + self._detector.tick(now)
                self._pending.extend((d, 0, now) for d in decisions)
                self._write_pending(now)

    # -- What else the edges call.

    def ignore(self) -> None:
        """Count an input accepted and not used (a client's call event, say)."""
        with self._detecting:
            self._stats.ignored += 1

    def sessions_changed(self) -> None:
        """A session started or ended: refresh the watched sessions at the next tick."""
        self._changed.set()

    def stats(self) -> dict[str, int]:
        with self._detecting:
            counts = self._detector.counts
            self._stats.stale, self._stats.late = counts.stale, counts.late
            self._stats.pending = len(self._pending)
            return asdict(self._stats)

    def open_exits(self) -> dict[str, str]:
        """Therapist -> session, for each exit the detector holds open."""
        with self._detecting:
            return {t: x.session for t, x in self._detector.open_exits().items()}

    # -- Inside.

    def _refresh_due(self, now: Instant) -> bool:
        if self._changed.is_set() or self._refreshed is None:
            return True
        return now - self._refreshed >= self._refresh_every

    def _load(self) -> list[Watched]:
        self._changed.clear()
        try:
            with self._read() as uow:
                sessions = uow.records.sessions_in_progress(self.practice)
        except Exception as e:
            log.warning("presence: could not read the sessions in progress (%s)", type(e).__name__)
            return [_watched(s) for s in self._sessions.values()]
        self._refreshed = self._clock()
        self._sessions = {s.id: s for s in sessions}
        self._stats.sessions_watched = len(sessions)
        return [_watched(s) for s in sessions]

    def _write_pending(self, now: Instant) -> None:
        while self._pending:
            decision, attempts, next_try = self._pending[0]
            if next_try > now:
                return  # the database was away: wait before trying again, in order
            try:
                self._write(decision)
            except ProtocolError as e:
                self._stats.refused += 1
                log.info("presence: the protocol refused a sensor decision (%s)", e.code)
            except Exception as e:
                self._stats.failed += 1
                attempts += 1
                if attempts < ATTEMPTS:
                    log.warning("presence: a sensor decision was not stored (%s)", type(e).__name__)
                    pause = min(RETRY_FIRST * 2 ** (attempts - 1), RETRY_MOST)
                    self._pending[0] = (decision, attempts, now + pause)
                    return
                log.error("presence: a sensor decision was dropped (%s)", type(e).__name__)
            self._pending.popleft()

    def _write(self, decision: Decision) -> None:
        at = self._clock()
        command: DetectExit | SensorReturn
        if isinstance(decision, ExitBegins):
            left_at = min(decision.left_at, at)
            command = DetectExit(practice=self.practice, session=decision.session, left_at=left_at)
        else:
            back = min(decision.returned_at, at)
            command = SensorReturn(
                practice=self.practice, session=decision.session, returned_at=back
            )
        try:
            outcome = self._workflow.run(command, caller=self._caller)
        except ProtocolError:
            self._record_refusal(command)
            raise
        with self._detecting:
            if not outcome.changed:
                self._stats.merged += 1
            elif isinstance(decision, ExitBegins):
                self._stats.exits_begun += 1
            else:
                self._stats.exits_ended += 1
        if outcome.changed and self._on_change is not None:
            try:
                self._on_change(outcome.session)
            except Exception as e:  # the exit is stored: a notice lost is caught up later
                log.warning("presence: the live notice failed (%s)", type(e).__name__)

    def _record_refusal(self, command: DetectExit | SensorReturn) -> None:
        """The audit record of a decision the protocol refused (nothing else was stored)."""
        entry = self._caller.record(action_of(command), target_of(command), outcome=FAILED)
        try:
            write_alone(self._uow, entry)
        except Exception as e:
            log.warning("presence: could not record a refusal (%s)", type(e).__name__)


def _watched(s: Session) -> Watched:
    return Watched(s.id, s.therapist, s.room, s.modality == "telehealth", s.start)


class PresenceServices:
    """The presence services of one process, one per practice, made on first use by `make`,
    and the thread that ticks them (`start`, `stop`)."""

    def __init__(
        self,
        make: Callable[[str], PresenceService],
        *,
        clock: Clock = now,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self._make = make
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._services: dict[str, PresenceService] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def of(self, practice: str) -> PresenceService:
        with self._lock:
            found = self._services.get(practice)
            if found is None:
                found = self._services[practice] = self._make(practice)
            return found

    def add(self, service: PresenceService) -> None:
        """Use `service` for its practice (a sensors file's), replacing one made before."""
        with self._lock:
            self._services[service.practice] = service

    def services(self) -> Iterable[PresenceService]:
        with self._lock:
            return tuple(self._services.values())

    def tick(self) -> None:
        at = self._clock()
        for service in self.services():
            try:
                service.tick(at)
            except Exception as e:
                log.error("presence: a tick failed (%s)", type(e).__name__)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="stepout-presence", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._tick_seconds):
            self.tick()

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self._tick_seconds * 4 + 5)
