"""The cast of a synthetic practice: therapists, rooms, pseudonymous clients and their weekly
schedule, plus the practice's wall clock (instants as ISO 8601 text with the local offset).

Instants here are whole seconds since the epoch (UTC): the generator never needs more, and
integer seconds keep the hot loop free of datetime arithmetic.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from math import ceil
from zoneinfo import ZoneInfo

FIRST_HOUR = 8  # the first session starts at 08:00 local time
LAST_HOUR = 18  # the last one-hour slot starts at 18:00 and ends by 19:00
SLOTS = LAST_HOUR - FIRST_HOUR + 1
SESSIONS_PER_WEEK = 25
TARGET_THERAPISTS = 100  # the period is sized to give about this many therapists
MIN_WEEKS, MAX_WEEKS = 4, 52
DAY_OFF = 0.04  # chance a therapist does not work on a given weekday
DAY_SIZES = ((3, 0.08), (4, 0.20), (5, 0.40), (6, 0.22), (7, 0.10))  # sessions on a workday
PATTERNS = 256  # distinct day patterns drawn per practice
TELEHEALTH_SHARES = (0.1, 0.3, 0.5, 0.9)  # per therapist, drawn uniformly
PRESCRIBER_EVERY = 8  # t-003, t-011, t-019, ...: therapists who also bill E/M visits
CASELOAD = (22, 34)  # clients per therapist, inclusive range
BASE_EXIT_RATE = (0.025, 0.040)  # per therapist, uniform: share of sessions with an exit
HIGH_EXIT_RATE = 0.10  # extra random chance for a high-rate therapist ...
HIGH_EXIT_EVERY = 12  # ... on top of an exit in every 12th of their sessions (12th, 24th, ...)

DAY = 86_400
_EPOCH_DAY = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Therapist:
    index: int  # position in the cast, 0-based
    id: str
    room: str
    telehealth_share: float
    prescriber: bool  # bills psychotherapy with an E/M visit (90833/90836/90838) most often
    exit_rate: float
    high_rate: bool  # well above the 5 % threshold of `exit-rate-high`
    clients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cast:
    practice: str
    therapists: tuple[Therapist, ...]
    rooms: tuple[str, ...]
    # A day's slots for one therapist: (slot index from 08:00, whether a crisis session of up
    # to two hours fits, i.e. the next slot is free and the session ends by 19:00).
    patterns: tuple[tuple[tuple[int, bool], ...], ...]


def sizes(sessions: int, therapists: int | None, rooms: int | None) -> tuple[int, int]:
    """How many therapists and rooms a practice of `sessions` sessions has by default."""
    if therapists is None:
        weeks = min(
            MAX_WEEKS, max(MIN_WEEKS, ceil(sessions / (SESSIONS_PER_WEEK * TARGET_THERAPISTS)))
        )
        therapists = max(1, round(sessions / (SESSIONS_PER_WEEK * weeks)))
    return therapists, therapists if rooms is None else rooms


def high_rate_count(therapists: int) -> int:
    """None for a lone therapist; t-001 up to 9; t-001 and t-002 up to 24; then 8 %."""
    if therapists < 10:
        return min(1, therapists - 1)
    return max(2, round(therapists * 0.08))


def build_cast(
    practice: str, sessions: int, therapists: int | None, rooms: int | None, rnd: random.Random
) -> Cast:
    n_therapists, n_rooms = sizes(sessions, therapists, rooms)
    if n_therapists < 1 or n_rooms < 1:
        raise ValueError("a practice needs at least one therapist and one room")
    room_ids = tuple(f"room-{i + 1:02d}" for i in range(n_rooms))
    n_high = high_rate_count(n_therapists)
    cast: list[Therapist] = []
    next_client = 1
    for i in range(n_therapists):
        caseload = rnd.randint(*CASELOAD)
        clients = tuple(f"client-{next_client + j:05d}" for j in range(caseload))
        next_client += caseload
        high = i < n_high
        cast.append(
            Therapist(
                index=i,
                id=f"t-{i + 1:03d}",
                room=room_ids[i % n_rooms],
                telehealth_share=rnd.choice(TELEHEALTH_SHARES),
                prescriber=i % PRESCRIBER_EVERY == 2,
                exit_rate=HIGH_EXIT_RATE if high else rnd.uniform(*BASE_EXIT_RATE),
                high_rate=high,
                clients=clients,
            )
        )
    return Cast(practice, tuple(cast), room_ids, _day_patterns(rnd))


def _day_patterns(rnd: random.Random) -> tuple[tuple[tuple[int, bool], ...], ...]:
    counts = [k for k, _ in DAY_SIZES]
    weights = [w for _, w in DAY_SIZES]
    patterns = []
    for _ in range(PATTERNS):
        (k,) = rnd.choices(counts, weights)
        slots = sorted(rnd.sample(range(SLOTS), k))
        taken = set(slots)
        patterns.append(tuple((s, s < SLOTS - 1 and s + 1 not in taken) for s in slots))
    return tuple(patterns)


@cache
def time_of_day() -> tuple[str, ...]:
    """`HH:MM:SS` for every second of a day, indexed by seconds since midnight."""
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY))


@dataclass(frozen=True, slots=True)
class WorkDay:
    base: int  # UTC seconds of local midnight, valid from 08:00 to 19:00 that day
    prefix: str  # "2026-10-01T"
    suffix: str  # "-04:00"


class Clock:
    """ISO 8601 text with the practice's UTC offset, cached per six hours and per day."""

    BLOCK = 6 * 3600  # offsets are cached per block in which they do not change

    def __init__(self, zone: str) -> None:
        self._tz = ZoneInfo(zone)
        self._blocks: dict[int, tuple[int, str]] = {}
        self._prefixes: dict[int, str] = {}
        self._tod = time_of_day()

    def text(self, t: int) -> str:
        entry = self._blocks.get(t // self.BLOCK)
        if entry is None:
            entry = self._entry(t)
        offset, suffix = entry
        day, second = divmod(t + offset, DAY)
        prefix = self._prefixes.get(day)
        if prefix is None:
            prefix = self._prefixes[day] = f"{_EPOCH_DAY + timedelta(days=day)}T"
        return prefix + self._tod[second] + suffix

    def working_days(self, start: date) -> Iterator[WorkDay]:
        """Weekdays from `start` on; a day whose offset changes during 08:00-19:00 is skipped
        (never the case in zones that change at night, as US and EU zones do)."""
        day = start
        while True:
            if day.weekday() < 5:
                opening = int(datetime.combine(day, time(FIRST_HOUR), self._tz).timestamp())
                offset, suffix = self._offset(opening)
                if self._offset(opening + (LAST_HOUR + 1 - FIRST_HOUR) * 3600)[0] == offset:
                    yield WorkDay(opening - FIRST_HOUR * 3600, f"{day}T", suffix)
            day += timedelta(days=1)

    def _entry(self, t: int) -> tuple[int, str]:
        block = t // self.BLOCK * self.BLOCK
        first = self._offset(block)
        if self._offset(block + self.BLOCK - 1) == first:
            self._blocks[block // self.BLOCK] = first
            return first
        return self._offset(t)  # the offset changes inside this block: not cached

    def _offset(self, t: int) -> tuple[int, str]:
        delta = datetime.fromtimestamp(t, self._tz).utcoffset()
        seconds = int(delta.total_seconds()) if delta is not None else 0
        sign = "-" if seconds < 0 else "+"
        hours, rest = divmod(abs(seconds), 3600)
        text = f"{sign}{hours:02d}:{rest // 60:02d}"
        if rest % 60:
            text += f":{rest % 60:02d}"
        return seconds, text
