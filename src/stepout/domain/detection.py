"""Exits nobody declared: the pure detector that folds presence observations into exits.

The detector keeps, in memory, where each therapist's badge was last seen, which rooms have a
sensor offline, recent door changes and who has left a video call. Told which sessions are in
progress (`watch`), fed observations (`observe`) and let time pass (`tick`), it returns
`ExitBegins` and `ExitEnds` decisions as plain data; the service layer records them.

Semantics (docs/sensors.md repeats them for operators):
- In person: a therapist whose badge has not been seen in their session's room for longer than
  `away_timeout` has left. A sighting further than `max_distance` from the room's receiver
  counts as not seen. A badge seen in another room (within `max_distance`) after its last
  sighting in the session's room shortens the wait to `elsewhere_timeout`.
- The silence is counted from the latest of: the last sighting in the room, the session's
  start, the detector's own start (`since`), and the moment the room's sensors were last all
  back online. So silence that began before the detector was listening, or while a sensor was
  offline, is never taken for an exit: a full wait of observation comes first.
- `left_at` is the start of that silence; when it is a sighting and a door of the room opened
  within `door_slack` before it or before the wait ran out, the opening nearest the sighting
  is taken instead (the door corroborates the time), never before the session's start nor
  before the room was last back online.
- The exit ends at the first sighting back in the session's room; `returned_at` is that
  sighting, or the door closing in the `door_slack` just before it.
- While any sensor or receiver of a room is offline, no exit begins for a session in it.
- Telehealth: a video platform's `CallPresence` does what the badge does: the therapist left
  the call at `left_at`, and if they have not rejoined within `away_timeout` the exit begins;
  rejoining ends it. Badges do not count for a telehealth session, nor calls for one in person.
- A therapist has at most one open exit. A session that stops being in progress drops its
  exit from the detector (the ledger keeps it open to the session's end).
- Order: observations wait in a buffer for `reorder_window` and are applied in the order of
  their instants (at one instant: availability, doors, calls, then badges), so that any
  arrival order within that window gives exactly the exits of the sorted stream. Each source
  (a badge in one room, a sensor, a call) drops an observation no later than the last one
  applied from it: duplicates and stale repeats change nothing. An observation arriving later
  than the window is applied when it comes, if its source has sent nothing later: a sighting
  after an exit began ends it then (never before it began).
- Occupancy sensors are not used to detect exits (a client alone keeps a room occupied).
"""

import heapq
from bisect import insort
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from stepout.domain.instants import MICROS_PER_SECOND, Instant
from stepout.domain.presence import (
    BadgeSeen,
    CallPresence,
    DoorChanged,
    Observation,
    OccupancyChanged,
    SensorAvailability,
    SensorsConfig,
)

NEVER: Final = -(2**62)


@dataclass(frozen=True, slots=True)
class Watched:
    """A session in progress, as the detector needs it."""

    session: str
    therapist: str
    room: str
    telehealth: bool
    start: Instant


@dataclass(frozen=True, slots=True)
class ExitBegins:
    session: str
    therapist: str
    left_at: Instant


@dataclass(frozen=True, slots=True)
class ExitEnds:
    session: str
    therapist: str
    left_at: Instant
    returned_at: Instant


Decision = ExitBegins | ExitEnds


ELSEWHERE_TIMEOUT: Final = 10 * MICROS_PER_SECOND
DOOR_SLACK: Final = 15 * MICROS_PER_SECOND
REORDER_WINDOW: Final = MICROS_PER_SECOND // 2


@dataclass(frozen=True, slots=True)
class Thresholds:
    away_timeout: Instant = 60 * MICROS_PER_SECOND
    max_distance: float = 5.0  # metres
    elsewhere_timeout: Instant = ELSEWHERE_TIMEOUT
    door_slack: Instant = DOOR_SLACK
    reorder_window: Instant = REORDER_WINDOW

    @classmethod
    def of(cls, config: SensorsConfig, *, reorder_window: Instant | None = None) -> "Thresholds":
        return cls(
            away_timeout=config.away_timeout,
            max_distance=config.max_distance,
            elsewhere_timeout=min(config.away_timeout, ELSEWHERE_TIMEOUT),
            reorder_window=REORDER_WINDOW if reorder_window is None else reorder_window,
        )


@dataclass(slots=True)
class Counts:
    applied: int = 0
    stale: int = 0  # a duplicate, or older than what its source already sent
    late: int = 0  # arrived after the reorder window (applied when it came)
    unused: int = 0  # too far, occupancy, a call for a session in person


class Detector:
    """Not thread-safe: the service serialises calls."""

    def __init__(self, thresholds: Thresholds, *, since: Instant) -> None:
        self.t = thresholds
        self.since = since
        self.counts = Counts()
        self._judged = since  # every instant up to here has been judged
        self._buffer: list[tuple[Instant, int, str, int, Observation]] = []
        self._seq = 0
        self._marks: dict[tuple[str, ...], Instant] = {}
        self._seen: dict[tuple[str, str], Instant] = {}  # (therapist, room) -> last in range
        self._latest: dict[str, tuple[Instant, str]] = {}  # therapist -> (at, room)
        self._offline: dict[str, set[str]] = {}  # room -> sensors offline
        self._online_since: dict[str, Instant] = {}
        self._doors: dict[str, list[tuple[Instant, bool]]] = {}  # room -> (at, closed), sorted
        self._left_call: dict[str, Instant] = {}  # session -> when the therapist left
        self._sessions: dict[str, Watched] = {}  # therapist -> session
        self._by_session: dict[str, Watched] = {}
        self._by_room: dict[str, set[str]] = {}  # room -> therapists in person
        self._open: dict[str, ExitBegins] = {}  # therapist -> open exit
        self._deadlines: list[tuple[Instant, str]] = []
        self._scheduled: dict[str, Instant] = {}  # therapist -> their live entry's deadline
        self._out: list[Decision] = []

    # -- What the service calls.

    def watch(self, sessions: Iterable[Watched]) -> list[Decision]:
        """The sessions in progress now (replacing those given before)."""
        latest: dict[str, Watched] = {}
        for s in sessions:
            known = latest.get(s.therapist)
            if known is None or (s.start, s.session) > (known.start, known.session):
                latest[s.therapist] = s
        for therapist, x in list(self._open.items()):
            mine = latest.get(therapist)
            if mine is None or mine.session != x.session:
                del self._open[therapist]
        gone = self._by_session.keys() - {s.session for s in latest.values()}
        for session in gone:
            self._left_call.pop(session, None)
        before = self._sessions
        self._sessions = latest
        self._by_session = {s.session: s for s in latest.values()}
        self._by_room = {}
        for s in latest.values():
            if not s.telehealth:
                self._by_room.setdefault(s.room, set()).add(s.therapist)
            if before.get(s.therapist) != s:
                self._scheduled.pop(s.therapist, None)
                self._push(s.therapist)
        return self._take()

    def observe(self, observation: Observation) -> None:
        """Buffer `observation`; `tick` applies it once the reorder window has passed."""
        self._seq += 1
        rank, ident = _order(observation)
        heapq.heappush(self._buffer, (observation.at, rank, ident, self._seq, observation))

    def tick(self, now: Instant) -> list[Decision]:
        """Apply the observations due by `now` and judge every instant up to `now` less the
        reorder window."""
        until = now - self.t.reorder_window
        while self._buffer and self._buffer[0][0] <= until:
            at, _, _, _, observation = heapq.heappop(self._buffer)
            if at > self._judged:
                self._judge(at)
            else:
                self.counts.late += at < self._judged
            self._apply(observation)
        self._judge(until)
        return self._take()

    def open_exits(self) -> dict[str, ExitBegins]:
        return dict(self._open)

    def available(self, room: str) -> bool:
        return not self._offline.get(room)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    # -- Applying one observation.

    def _fresh(self, key: tuple[str, ...], at: Instant) -> bool:
        if at <= self._marks.get(key, NEVER):
            self.counts.stale += 1
            return False
        self._marks[key] = at
        self.counts.applied += 1
        return True

    def _apply(self, o: Observation) -> None:
        match o:
            case BadgeSeen():
                if self._fresh(("badge", o.therapist, o.room), o.at):
                    self._badge(o)
            case DoorChanged():
                if self._fresh(("sensor", o.sensor), o.at):
                    self._door(o)
            case SensorAvailability():
                if self._fresh(("sensor", o.sensor), o.at):
                    self._availability(o)
            case CallPresence():
                if self._fresh(("call", o.session), o.at):
                    self._call(o)
            case OccupancyChanged():
                if self._fresh(("sensor", o.sensor), o.at):
                    self.counts.unused += 1

    def _badge(self, o: BadgeSeen) -> None:
        if o.distance is not None and o.distance > self.t.max_distance:
            self.counts.unused += 1
            return
        key = (o.therapist, o.room)
        self._seen[key] = max(self._seen.get(key, NEVER), o.at)
        if o.at > self._latest.get(o.therapist, (NEVER, ""))[0]:
            self._latest[o.therapist] = (o.at, o.room)
        s = self._sessions.get(o.therapist)
        if s is None or s.telehealth:
            return
        if o.room == s.room:
            x = self._open.get(o.therapist)
            if x is not None and o.at > x.left_at:
                self._end(x, self._door_before(s.room, o.at, x.left_at))
        else:
            self._push(o.therapist)

    def _door(self, o: DoorChanged) -> None:
        doors = self._doors.setdefault(o.room, [])
        insort(doors, (o.at, o.closed))
        keep = o.at - self.t.away_timeout - 2 * self.t.door_slack - self.t.reorder_window
        if doors[0][0] < keep:
            self._doors[o.room] = [d for d in doors if d[0] >= keep]

    def _availability(self, o: SensorAvailability) -> None:
        offline = self._offline.setdefault(o.room, set())
        if o.online:
            if o.sensor in offline:
                offline.discard(o.sensor)
                if not offline:
                    self._online_since[o.room] = o.at
                    for therapist in self._by_room.get(o.room, ()):
                        self._push(therapist)
        else:
            offline.add(o.sensor)

    def _call(self, o: CallPresence) -> None:
        s = self._by_session.get(o.session)
        if s is not None and not s.telehealth:
            self.counts.unused += 1
            return
        if o.present:
            self._left_call.pop(o.session, None)
            x = None if s is None else self._open.get(s.therapist)
            if x is not None and x.session == o.session and o.at > x.left_at:
                self._end(x, o.at)
        else:
            self._left_call.setdefault(o.session, o.at)
            if s is not None:
                self._push(s.therapist)

    # -- Judging the passage of time.

    def _silence(self, s: Watched) -> tuple[Instant, bool] | None:
        """When the therapist's observed absence began, and whether that is a sighting; None
        while they are present on the call or the room cannot be observed."""
        watched_from = max(s.start, self.since)
        if s.telehealth:
            left = self._left_call.get(s.session)
            return None if left is None else (max(left, watched_from), left >= watched_from)
        if self._offline.get(s.room):
            return None
        seen = self._seen.get((s.therapist, s.room), NEVER)
        start = max(seen, watched_from, self._online_since.get(s.room, NEVER))
        return start, seen == start

    def _deadline(self, s: Watched) -> Instant | None:
        silence = self._silence(s)
        if silence is None:
            return None
        start = silence[0]
        at, room = self._latest.get(s.therapist, (NEVER, s.room))
        elsewhere = not s.telehealth and room != s.room and at >= start
        return start + (self.t.elsewhere_timeout if elsewhere else self.t.away_timeout)

    def _push(self, therapist: str) -> None:
        s = self._sessions.get(therapist)
        if s is None or therapist in self._open:
            return
        deadline = self._deadline(s)
        if deadline is not None and deadline < self._scheduled.get(therapist, -NEVER):
            self._scheduled[therapist] = deadline
            heapq.heappush(self._deadlines, (deadline, therapist))

    def _judge(self, now: Instant) -> None:
        """Begin the exit of every therapist unseen for longer than their wait by `now`."""
        while self._deadlines and self._deadlines[0][0] < now:
            due, therapist = heapq.heappop(self._deadlines)
            if self._scheduled.get(therapist) != due:
                continue  # superseded by an earlier entry
            del self._scheduled[therapist]
            s = self._sessions.get(therapist)
            if s is None or therapist in self._open:
                continue
            deadline = self._deadline(s)
            if deadline is None:
                continue  # pushed again when the room is back online or the call is left
            if deadline < now:
                self._begin(s, deadline)
            else:
                self._scheduled[therapist] = deadline
                heapq.heappush(self._deadlines, (deadline, therapist))
        self._judged = max(self._judged, now)

    def _begin(self, s: Watched, deadline: Instant) -> None:
        silence = self._silence(s)
        assert silence is not None
        left_at, sighting = silence
        if sighting and not s.telehealth:
            observed_from = max(s.start, self.since, self._online_since.get(s.room, NEVER))
            left_at = max(self._door_opening(s.room, left_at, deadline), observed_from)
        x = ExitBegins(s.session, s.therapist, left_at)
        self._open[s.therapist] = x
        self._out.append(x)

    def _end(self, x: ExitBegins, returned_at: Instant) -> None:
        del self._open[x.therapist]
        self._out.append(ExitEnds(x.session, x.therapist, x.left_at, max(returned_at, x.left_at)))
        self._push(x.therapist)

    def _door_opening(self, room: str, seen: Instant, high: Instant) -> Instant:
        """The door opening that corroborates a leaving last seen at `seen`: the one nearest
        to it in [seen - slack, high] (`high`: when the wait ran out), else `seen`."""
        low = seen - self.t.door_slack
        found = [at for at, closed in self._doors.get(room, ()) if not closed and low <= at <= high]
        return min(found, key=lambda at: (abs(at - seen), at)) if found else seen

    def _door_before(self, room: str, back: Instant, left_at: Instant) -> Instant:
        """The return seen at `back`: the door closing just before it (within the slack, after
        the leaving), else `back`."""
        low = max(back - self.t.door_slack, left_at)
        found = [at for at, closed in self._doors.get(room, ()) if closed and low <= at <= back]
        return max(found) if found else back

    def _take(self) -> list[Decision]:
        out, self._out = self._out, []
        return out


_RANKS: Final = {SensorAvailability: 0, DoorChanged: 1, OccupancyChanged: 1, CallPresence: 2}


def _order(o: Observation) -> tuple[int, str]:
    """How observations of one instant are applied, whatever order they came in: sensors
    first (a door that closed as the badge was seen back counts), then calls and badges; ties
    by content, so that the result never depends on the arrival order."""
    if isinstance(o, BadgeSeen):
        return 3, f"{o.therapist}\x00{o.room}\x00{o.distance}"
    if isinstance(o, CallPresence):
        return 2, f"{o.session}\x00{o.present}"
    if isinstance(o, SensorAvailability):
        return 0, f"{o.sensor}\x00{o.online}"
    return _RANKS[
        type(o)
    ], f"{o.sensor}\x00{o.closed if isinstance(o, DoorChanged) else o.occupied}"
