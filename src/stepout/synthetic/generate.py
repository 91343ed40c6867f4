"""The driver: a practice's sessions in start order, each followed by its exits and concerns,
as interchange records (plain dicts, `kind` first), and a fast JSON Lines writer.

Deterministic for a seed: one `random.Random(seed)` drives everything, in a fixed order.
"""

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from stepout.synthetic.exits import (
    CONCERN_WITH_EXIT,
    CONCERN_WITHOUT_EXIT,
    SCRIPT,
    concern_record,
    draw_plans,
    exit_records,
)
from stepout.synthetic.practice import (
    DAY_OFF,
    FIRST_HOUR,
    HIGH_EXIT_EVERY,
    SLOTS,
    Clock,
    build_cast,
    time_of_day,
)

# (percent of sessions, minutes, billed psychotherapy code, its E/M counterpart).
BOOKINGS = (
    (4, 30, "90832", "90833"),
    (36, 45, "90834", "90836"),
    (25, 53, "90837", "90838"),
    (35, 60, "90837", "90838"),
)
_BOOKED = tuple(b[1:] for b in BOOKINGS for _ in range(b[0]))  # indexed by a draw * 100
LOWER = {"90837": "90834", "90834": "90832", "90838": "90836", "90836": "90833"}
EM_SHARE = 0.70  # of a prescriber's sessions
CRISIS_SHARE = 0.02  # of the sessions in a slot where two hours fit
CRISIS_MINUTES = (60, 75, 80, 90, 105, 110, 120)  # drawn uniformly
UNBILLED, UNDERCODED, ADD_ON = 0.02, 0.03, 0.05  # 90785 is the add-on
SCRIPT_FROM = 100  # in data sets this large, t-001's first sessions are scripted
PROGRESS_EVERY = 8192  # records between writes and progress calls


@dataclass(frozen=True)
class GeneratorConfig:
    sessions: int
    seed: int = 0
    practice: str = "demo"
    start: date = date(2026, 10, 1)
    timezone: str = "America/New_York"
    therapists: int | None = None  # None: about 25 sessions a week each (see the docs)
    rooms: int | None = None  # None: one room per therapist

    def __post_init__(self) -> None:
        if self.sessions < 0:
            raise ValueError("sessions must not be negative")
        if self.therapists is not None and self.therapists < 1:
            raise ValueError("therapists must be at least 1")
        if self.rooms is not None and self.rooms < 1:
            raise ValueError("rooms must be at least 1")
        if not self.practice:
            raise ValueError("practice must not be empty")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone: {self.timezone}") from None


def _book(rand: Callable[[], float], prescriber: bool, long_fits: bool) -> tuple[int, list[str]]:
    """A session's length in minutes and its billed codes."""
    if long_fits and rand() < CRISIS_SHARE:
        minutes = CRISIS_MINUTES[int(rand() * len(CRISIS_MINUTES))]
        units = 0 if minutes < 75 else 1 + (minutes - 75) // 30
        if units and rand() < UNDERCODED:
            units -= 1
        return minutes, ["90839"] + ["90840"] * units
    minutes, code, em_code = _BOOKED[int(rand() * 100)]
    if prescriber and rand() < EM_SHARE:
        code = em_code
    u = rand()
    if u < UNBILLED:
        return minutes, []
    codes = [LOWER.get(code, code) if u < UNBILLED + UNDERCODED else code]
    if rand() < ADD_ON:
        codes.append("90785")
    return minutes, codes


def generate(config: GeneratorConfig) -> Iterator[dict[str, Any]]:
    """`config.sessions` sessions, each followed by its exits, then its concerns."""
    total = config.sessions
    if total == 0:
        return
    rnd = random.Random(config.seed)
    rand = rnd.random
    cast = build_cast(config.practice, total, config.therapists, config.rooms, rnd)
    clock = Clock(config.timezone)
    tod = time_of_day()
    patterns = cast.patterns
    n_patterns = len(patterns)
    therapists = cast.therapists
    seen = [0] * len(therapists)  # sessions so far, per therapist
    scripts = list(reversed(SCRIPT)) if total >= SCRIPT_FROM else []
    practice = config.practice
    sid = eid = kid = 0
    for day in clock.working_days(config.start):
        slots: list[list[tuple[int, bool]]] = [[] for _ in range(SLOTS)]
        for t in range(len(therapists)):
            if rand() < DAY_OFF:
                continue
            for slot, long_fits in patterns[int(rand() * n_patterns)]:
                slots[slot].append((t, long_fits))
        prefix, suffix = day.prefix, day.suffix
        for slot, booked in enumerate(slots):
            local = (FIRST_HOUR + slot) * 3600
            start = day.base + local
            start_text = prefix + tod[local] + suffix
            for t, long_fits in booked:
                th = therapists[t]
                sid += 1
                session_id = f"s-{sid:07d}"
                script = scripts.pop() if scripts and t == 0 else None
                if script is not None:
                    minutes, codes = 53, ["90837"]
                else:
                    minutes, codes = _book(rand, th.prescriber, long_fits)
                end = start + minutes * 60
                clients = th.clients
                yield {
                    "kind": "session",
                    "id": session_id,
                    "practice": practice,
                    "therapist": th.id,
                    "client": clients[int(rand() * len(clients))],
                    "room": th.room,
                    "modality": "telehealth" if rand() < th.telehealth_share else "in_person",
                    "start": start_text,
                    "end": prefix + tod[local + minutes * 60] + suffix,
                    "billed_codes": codes,
                }
                count = seen[t]
                seen[t] = count + 1
                if script is not None:
                    plans = list(script.plans)
                    concern = script.concern
                else:
                    forced = th.high_rate and count % HIGH_EXIT_EVERY == HIGH_EXIT_EVERY - 1
                    plans = draw_plans(rnd) if rand() < th.exit_rate or forced else []
                    concern = rand() < (CONCERN_WITH_EXIT if plans else CONCERN_WITHOUT_EXIT)
                if plans:
                    yield from exit_records(plans, session_id, start, end, eid + 1, clock, rnd)
                    eid += len(plans)
                if concern:
                    kid += 1
                    yield concern_record(rnd, clock, kid, session_id, end, script)
                if sid == total:
                    return


def write_jsonl(
    records: Iterable[dict[str, Any]],
    out: BinaryIO,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write one JSON object per line; return how many. `progress(sessions_done)` is called
    every few thousand records and once at the end."""
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE
    buffer: list[bytes] = []
    append = buffer.append
    written = sessions = 0
    for record in records:
        append(dumps(record, option=option))
        if record["kind"] == "session":
            sessions += 1
        if len(buffer) == PROGRESS_EVERY:
            out.write(b"".join(buffer))
            written += len(buffer)
            buffer.clear()
            if progress is not None:
                progress(sessions)
    out.write(b"".join(buffer))
    written += len(buffer)
    if progress is not None:
        progress(sessions)
    return written
