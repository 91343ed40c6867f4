"""Exits nobody declared, in process (no broker; `bench/sensors.py` measures through it):

1. the cost of `PresenceService.observe` per badge message, and of applying it at the next
   `tick`, with 5,000 therapists each in a session in their own room (in-memory store);
2. the detection latency: a therapist's badge stops being seen while every other badge keeps
   reporting every second; from the moment the away timeout is exceeded to the exit committed
   (the service's `on_change`, after the commit) and to the room display's stream woken (the
   live hub's signal on the room's topic), with the service ticked twice a second as the MQTT
   consumer does.

    python -m bench.detection                                   # SQLite file in a temp folder
    python -m bench.detection --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Synthetic ids only.
"""

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench.keys import bench_keys
from stepout.adapters.memory import MemoryState, MemoryUnitOfWork
from stepout.domain.detection import Thresholds
from stepout.domain.events import Event
from stepout.domain.instants import MICROS_PER_SECOND, format_instant, now
from stepout.domain.presence import BadgeSeen, SensorsConfig
from stepout.domain.records import Session
from stepout.services.presence import PresenceService, PresenceServices
from stepout.web.api.presence import notify_on_change
from stepout.web.live import Hub, LocalNotifier, room_topic

S = MICROS_PER_SECOND
PRACTICE = "bench-presence"


def _session_events(count: int, start: int) -> list[Event]:
    events = [Event("practice.created", PRACTICE, PRACTICE, start, {"name": "Synthetic"})]
    for i in range(count):
        events.append(
            Event(
                "session.started",
                PRACTICE,
                f"s-{i:05d}",
                start,
                {
                    "practice": PRACTICE,
                    "therapist": f"t-{i:05d}",
                    "client": f"c-{i:05d}",
                    "room": f"r-{i:05d}",
                    "modality": "in_person",
                    "start": format_instant(start),
                    "billed_codes": [],
                },
            )
        )
    return events


def observe_cost(therapists: int, messages: int) -> dict[str, float]:
    """µs per `observe` call and per message applied at `tick`, in-memory store."""
    start = now()
    state = MemoryState()
    with MemoryUnitOfWork(state) as uow:
        uow.ledger.append(_session_events(therapists, start))
        uow.commit()
    clock = [start + S]
    service = PresenceService(
        SensorsConfig(PRACTICE), lambda: MemoryUnitOfWork(state), clock=lambda: clock[0]
    )
    service.tick(clock[0])  # loads the sessions
    batch = [
        BadgeSeen(f"t-{i % therapists:05d}", f"r-{i % therapists:05d}", 1.5, clock[0] + i)
        for i in range(messages)
    ]
    t0 = time.perf_counter()
    for message in batch:
        service.observe(message)
    observed = time.perf_counter() - t0
    clock[0] += messages + S
    t0 = time.perf_counter()
    service.tick(clock[0])
    applied = time.perf_counter() - t0
    assert service.stats()["exits_begun"] == 0
    return {
        "therapists": therapists,
        "messages": messages,
        "observe_us_per_message": observed / messages * 1e6,
        "apply_at_tick_us_per_message": applied / messages * 1e6,
        "messages_per_second_observe_and_apply": messages / (observed + applied),
    }


class Display:
    """A room display's stream, as far as the live hub goes: woken on its room's topic."""

    def __init__(self) -> None:
        self.hub = Hub()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hub.bind(self.loop)

    def woken_at(self, practice: str, room: str, timeout: float) -> Any:
        """A future of when the room's stream is woken (None: not within `timeout`)."""

        async def wait() -> int | None:
            with self.hub.subscribe(room_topic(practice, room)) as signal:
                try:
                    await asyncio.wait_for(signal.wait(), timeout)
                except TimeoutError:
                    return None
                return now()

        return asyncio.run_coroutine_threadsafe(wait(), self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def latency(url: str, sessions: int, trials: int, timeout_s: float) -> dict[str, Any]:
    from stepout.adapters.db import Database, tenancy
    from stepout.domain.commands import StartSession
    from stepout.services.workflow import Workflow

    tenancy.set_process_default(tenancy.ALL)
    db = Database.open(url, migrate=False, keys=bench_keys())
    db.migrate()
    run = f"{now() % 10**9:09d}"
    practice = PRACTICE + "-" + run
    with db.uow() as uow:
        uow.ledger.append([Event("practice.created", practice, practice, now(), {"name": "B"})])
        uow.commit()
    flow = Workflow(partial(db.uow, scope=practice))
    started: list[Session] = []
    for i in range(sessions):
        started.append(
            flow.start_session(
                StartSession(
                    practice=practice,
                    therapist=f"t-{run}-{i:04d}",
                    client=f"c-{i:04d}",
                    room=f"r-{run}-{i:04d}",
                    modality="in_person",
                )
            )
        )
    display = Display()
    notifier = LocalNotifier(display.hub)
    committed: dict[str, int] = {}
    tell = notify_on_change(notifier)

    def changed(s: Session) -> None:
        committed.setdefault(s.id, now())
        tell(s)

    config = SensorsConfig(practice, away_timeout=round(timeout_s * S))
    service = PresenceService(
        config,
        partial(db.uow, scope=practice),
        read_uow=partial(db.uow, read_only=True, scope=practice),
        on_change=changed,
        thresholds=Thresholds.of(config),
    )
    ticker = PresenceServices(lambda p: service, tick_seconds=0.5)
    ticker.add(service)
    silent: set[str] = set()
    last_at: dict[str, int] = {}
    stop = threading.Event()

    def badges() -> None:  # every badge but the silent ones, every second
        while not stop.is_set():
            at = now()
            for s in started:
                if s.therapist not in silent:
                    service.observe(BadgeSeen(s.therapist, s.room, 1.5, at))
                    last_at[s.therapist] = at
            stop.wait(1.0)

    feeder = threading.Thread(target=badges, daemon=True)
    feeder.start()
    ticker.start()
    time.sleep(timeout_s + 2)  # a full timeout of observation first
    to_commit: list[float] = []
    to_display: list[float] = []
    try:
        for trial in range(trials):
            victim = started[trial % len(started)]
            woken = display.woken_at(practice, victim.room, timeout_s + 15)
            time.sleep(0.3)
            silent.add(victim.therapist)
            shown = woken.result(timeout_s + 20)
            stored = committed.get(victim.id)
            if shown is None or stored is None:
                raise RuntimeError(f"trial {trial}: no exit detected ({service.stats()})")
            deadline = last_at[victim.therapist] + round(timeout_s * S)  # its last sighting's
            to_commit.append((stored - deadline) / 1e6)
            to_display.append((shown - deadline) / 1e6)
            silent.discard(victim.therapist)
            time.sleep(1.5)  # the badge back: the exit ends
    finally:
        stop.set()
        ticker.stop()
        feeder.join(5)
        display.stop()
        db.dispose()
    stats = service.stats()
    return {
        "engine": "postgresql" if url.startswith("postgres") else "sqlite",
        "sessions_watched": stats["sessions_watched"],
        "trials": trials,
        "away_timeout_s": timeout_s,
        "to_commit_s": _summary(to_commit),
        "to_display_s": _summary(to_display),
        "exits_begun": stats["exits_begun"],
        "exits_ended": stats["exits_ended"],
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--therapists", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=5.0, help="away timeout, seconds")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'detection.db'}"
    print("observe:", observe_cost(args.therapists, args.messages))
    print("latency:", latency(url, args.sessions, args.trials, args.timeout))


if __name__ == "__main__":
    main()
