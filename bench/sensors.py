"""Presence sensors through the real broker: sustained ingestion and detection latency.

    python -m bench.sensors ingest --sink null                 # the consumer and parser alone
    python -m bench.sensors ingest --sink service              # + detector and service, SQLite
    python -m bench.sensors ingest --sink service \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python -m bench.sensors latency                            # away timeout -> exit recorded

Both use 5,000 rooms by default, one therapist (badge) per room, a session in progress in each
(with `--sink service` and for `latency`), and topics under a root of the run's own on the
broker (mqtt://127.0.0.1:1883 unless `--broker`).

`ingest` offers `--rate` badge reports per second (ESPresense's `mqtt_room` JSON, QoS 0) for
`--seconds`, from `--publishers` processes of their own, round-robin over the rooms, and
measures, in this process, how many the consumer took (parsed and handed to the sink) per
second, how far it fell behind the publishers (the largest backlog, in messages, sampled
every 0.1 s), and its CPU time per message. `--rate 0` publishes as fast as the publishers can.

`latency` keeps every badge reported every 2 s (2,500 messages/s with 5,000 rooms) and silences
`--exits` of them, one after another; for each, the time from the moment its away timeout ran
out (its last report plus the timeout) to the moment the exit was committed and the room's
display notified (the notifier's call). Results go to bench/out/sensors-<phase>-*.json.
"""

import argparse
import multiprocessing
import os
import resource
import secrets
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.keys import bench_keys

OUT = Path(__file__).parent / "out"
BROKER = "mqtt://127.0.0.1:1883"
KEEP: list[Any] = []  # what the publisher processes share with this one


@dataclass(frozen=True)
class Plan:
    root: str  # topic root of this run
    rooms: int

    def device(self, i: int) -> str:
        return f"badge:b-{i:05d}"

    def receiver(self, i: int) -> str:
        return f"therapy_{i:05d}"

    def topic(self, i: int) -> str:
        return f"{self.root}/espresense/devices/{self.device(i)}/{self.receiver(i)}"

    def payload(self, i: int, distance: float) -> bytes:
        return orjson.dumps(
            {
                "id": self.device(i),
                "idType": 30,
                "rssi@1m": -65,
                "rssi": -72,
                "raw": round(distance * 1.1, 2),
                "distance": distance,
                "speed": 0.0,
                "mac": "",
                "interval": 2000,
            }
        )


def sensors_config(plan: Plan, practice: str, away_s: float) -> Any:
    from stepout.domain.instants import MICROS_PER_SECOND
    from stepout.domain.presence import SensorsConfig

    return SensorsConfig(
        practice=practice,
        away_timeout=round(away_s * MICROS_PER_SECOND),
        devices={plan.device(i): f"t-{i:05d}" for i in range(plan.rooms)},
        receivers={plan.receiver(i): f"room-{i:05d}" for i in range(plan.rooms)},
    )


def topics_of(plan: Plan) -> Any:
    from stepout.adapters.mqtt.parsing import Topics

    return Topics(espresense=f"{plan.root}/espresense", zigbee2mqtt=f"{plan.root}/zigbee2mqtt")


# -- Publishers (processes of their own)


def publisher(
    broker: str,
    plan: Plan,
    share: tuple[int, int],
    rate: float,
    seconds: float,
    start_at: float,
    published: Any,
    silence: dict[int, float],
    last_seen: Any,
) -> None:
    """Publish badge reports of rooms `share[0]::share[1]` at `rate` per second (0: flat out)
    from `start_at` (wall clock) for `seconds`; a room in `silence` stops at that offset, and
    its last report's wall-clock time goes to `last_seen`."""
    from stepout.adapters.mqtt.consumer import parse_broker
    from stepout.adapters.mqtt.simulator import Message, Publisher

    first, step = share
    mine = list(range(first, plan.rooms, step))
    messages = [(i, Message(plan.topic(i), plan.payload(i, 1.0 + (i % 10) / 10))) for i in mine]
    sent = 0
    with Publisher(parse_broker(broker)) as pub:
        while time.time() < start_at:
            time.sleep(0.001)
        begin = time.monotonic()
        k = 0
        batch = max(1, int(rate / 100)) if rate else 200
        while True:
            elapsed = time.monotonic() - begin
            if elapsed >= seconds:
                break
            before = sent
            for _ in range(batch):
                i, message = messages[k % len(messages)]
                k += 1
                stop = silence.get(i)
                if stop is not None and elapsed >= stop:
                    continue
                pub.publish(message)
                sent += 1
                if stop is not None:
                    last_seen[i] = time.time()
            with published.get_lock():
                published.value += sent - before
            if rate:
                ahead = sent / rate - (time.monotonic() - begin)
                if ahead > 0:
                    time.sleep(ahead)


def start_publishers(
    broker: str,
    plan: Plan,
    count: int,
    rate: float,
    seconds: float,
    silence: dict[int, float] | None = None,
) -> tuple[list[multiprocessing.Process], Any, Any, float]:
    ctx = multiprocessing.get_context("spawn")
    published = ctx.Value("q", 0)
    manager = ctx.Manager()
    KEEP.append(manager)  # alive while the publishers run
    last_seen = manager.dict()
    start_at = time.time() + 3.0  # every process connected by then
    processes = [
        ctx.Process(
            target=publisher,
            args=(
                broker,
                plan,
                (p, count),
                rate / count,
                seconds,
                start_at,
                published,
                silence or {},
                last_seen,
            ),
        )
        for p in range(count)
    ]
    for process in processes:
        process.start()
    return processes, published, last_seen, start_at


# -- The database


def populate(url: str, rooms: int) -> str:
    """A practice with a session in progress in each room: its id."""
    from stepout.adapters.db import Database, tenancy
    from stepout.domain.commands import StartSession
    from stepout.services.accounts import AccountService
    from stepout.services.workflow import Workflow

    tenancy.set_process_default(tenancy.ALL)
    db = Database.open(url, migrate=False, keys=bench_keys())
    db.migrate()
    practice = f"bench-sensors-{secrets.token_hex(3)}"
    AccountService(db.uow).add_practice(practice, "Synthetic benchmark practice")
    workflow = Workflow(db.uow)
    began = time.monotonic()
    for i in range(rooms):
        workflow.run(
            StartSession(
                practice=practice,
                therapist=f"t-{i:05d}",
                client=f"synthetic-client-{i:05d}",
                room=f"room-{i:05d}",
                modality="in_person",
            )
        )
    print(f"{rooms:,} sessions started in {time.monotonic() - began:.1f} s", file=sys.stderr)
    db.dispose()
    return practice


class Notices:
    """A notifier that notes when each room was told."""

    def __init__(self) -> None:
        self.at: dict[str, list[float]] = {}

    def notify(self, topics: Iterable[str]) -> None:
        moment = time.time()
        for topic in topics:
            self.at.setdefault(topic, []).append(moment)

    def first_after(self, topic: str, moment: float) -> float | None:
        return next((t for t in self.at.get(topic, ()) if t >= moment), None)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def service_sink(url: str, practice: str, config: Any, notices: Notices) -> tuple[Any, Any]:
    from stepout.adapters.db import Database, tenancy
    from stepout.adapters.mqtt.wiring import notice
    from stepout.services.presence import PresenceService

    tenancy.set_process_default(tenancy.ALL)
    db = Database.open(url, migrate=False, keys=bench_keys())
    return PresenceService(config, db.uow, on_change=notice(notices)), db


# -- Phases


def ingest(args: argparse.Namespace) -> dict[str, Any]:
    from stepout.adapters.mqtt.consumer import Consumer, parse_broker
    from stepout.adapters.mqtt.sinks import NullSink

    plan = Plan(f"stepout-bench/{secrets.token_hex(4)}", args.rooms)
    db = None
    if args.sink == "service":
        practice = populate(args.database_url, args.rooms)
        config = sensors_config(plan, practice, away_s=60)
        sink, db = service_sink(args.database_url, practice, config, Notices())
    else:
        config = sensors_config(plan, "bench", away_s=60)
        sink = NullSink()
    consumer = Consumer(config, sink, parse_broker(args.broker), topics=topics_of(plan))
    consumer.start()
    if not consumer.connected.wait(10):
        raise SystemExit(f"no broker at {args.broker}")
    time.sleep(0.5)
    processes, published, _, start_at = start_publishers(
        args.broker, plan, args.publishers, args.rate, args.seconds
    )
    taken0 = consumer.counters.observed
    while time.time() < start_at:
        time.sleep(0.001)
    cpu0, wall0 = time.process_time(), time.monotonic()
    backlog, backlog_at = 0, 0.0
    while any(p.is_alive() for p in processes):
        time.sleep(0.1)
        behind = published.value - (consumer.counters.observed - taken0)
        if behind > backlog:
            backlog, backlog_at = behind, time.monotonic() - wall0
    sent = published.value
    last, quiet = consumer.counters.observed, time.monotonic()
    while consumer.counters.observed - taken0 < sent and time.monotonic() - quiet < 5:
        time.sleep(0.05)
        if consumer.counters.observed != last:
            last, quiet = consumer.counters.observed, time.monotonic()
    wall = quiet - wall0  # to the last message taken
    cpu = time.process_time() - cpu0
    taken = consumer.counters.observed - taken0
    consumer.stop()
    result = {
        "phase": "ingest",
        "sink": args.sink,
        "engine": None if db is None else db.dialect,
        "rooms": args.rooms,
        "offered_per_s": args.rate or None,
        "published": sent,
        "taken": taken,
        "lost": sent - taken,
        "seconds": round(wall, 2),
        "taken_per_s": round(taken / wall),
        "max_backlog": backlog,
        "max_backlog_at_s": round(backlog_at, 1),
        "cpu_us_per_message": round(cpu / max(taken, 1) * 1e6, 1),
        "ignored": dict(consumer.counters.ignored),
        "load_average": os.getloadavg()[0],
    }
    if args.sink == "service":
        result["service"] = sink.stats()
        db.dispose()
    return result


def latency(args: argparse.Namespace) -> dict[str, Any]:
    from stepout.adapters.mqtt.consumer import Consumer, parse_broker
    from stepout.web.live import room_topic

    plan = Plan(f"stepout-bench/{secrets.token_hex(4)}", args.rooms)
    practice = populate(args.database_url, args.rooms)
    config = sensors_config(plan, practice, away_s=args.away)
    notices = Notices()
    # Each badge every 2 s. The detector starts once every badge has been reported (silence
    # before its start is no exit), watches a full timeout, then one room falls silent
    # every 2 s.
    warm = 3 + args.away + 5
    silence = {i * (args.rooms // args.exits): warm + 2 * i for i in range(args.exits)}
    seconds = warm + 2 * args.exits + args.away + 5
    processes, published, last_seen, start_at = start_publishers(
        args.broker, plan, args.publishers, args.rooms / 2, seconds, silence
    )
    while time.time() < start_at + 3:
        time.sleep(0.05)
    sink, db = service_sink(args.database_url, practice, config, notices)
    consumer = Consumer(config, sink, parse_broker(args.broker), topics=topics_of(plan))
    consumer.start()
    if not consumer.connected.wait(10):
        raise SystemExit(f"no broker at {args.broker}")
    for process in processes:
        process.join()
    time.sleep(3)
    consumer.stop()
    print(f"{published.value:,} messages published", file=sys.stderr)
    delays = []
    for i in silence:
        seen = last_seen.get(i)
        told = (
            None
            if seen is None
            else notices.first_after(room_topic(practice, f"room-{i:05d}"), seen)
        )
        if told is not None and seen is not None:
            delays.append(told - (seen + args.away))
    stats = sink.stats()
    db.dispose()
    return {
        "phase": "latency",
        "engine": db.dialect,
        "rooms": args.rooms,
        "away_timeout_s": args.away,
        "exits_expected": args.exits,
        "exits_recorded": stats["exits_begun"],
        "notified": len(delays),
        "delay_s_median": round(statistics.median(delays), 3) if delays else None,
        "delay_s_max": round(max(delays), 3) if delays else None,
        "delay_s_min": round(min(delays), 3) if delays else None,
        "delays_s": sorted(round(d, 2) for d in delays),
        "messages": consumer.counters.observed,
        "service": stats,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("phase", choices=["ingest", "latency"])
    parser.add_argument("--broker", default=BROKER)
    parser.add_argument("--rooms", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=6000.0, help="offered messages/s (0: max)")
    parser.add_argument("--publishers", type=int, default=1)
    parser.add_argument("--sink", choices=["null", "service"], default="null")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--away", type=float, default=10.0, help="away timeout (latency), s")
    parser.add_argument("--exits", type=int, default=20)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    scratch = None
    if args.database_url is None:
        scratch = OUT / f"sensors-{secrets.token_hex(3)}.db"
        args.database_url = f"sqlite:///{scratch}"
    try:
        result = ingest(args) if args.phase == "ingest" else latency(args)
    finally:
        if scratch is not None:
            for leftover in OUT.glob(f"{scratch.name}*"):
                leftover.unlink()
    name = f"sensors-{args.phase}-{result.get('sink') or 'service'}-{result['engine'] or 'none'}"
    (OUT / f"{name}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
