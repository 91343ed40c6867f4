"""The dashboard's figures (`stepout.adapters.db.dashboard`) on a practice of 100,000 sessions
and a group of 1,000,000, in one database.

    python -m bench.dashboard prepare [--database-url URL]   # once: a fresh database
    python -m bench.dashboard run [--database-url URL] [--repeat 5] [--direct] [--no-migrate]

`prepare` creates the practices `demo` (the group: the 1,000,000 sessions of
`bench/out/records-1000000-1.jsonl`, the import bench's file, generated if missing) and
`small` (100,000 generated sessions, seed 2, ids prefixed `b-`), both in America/New_York, and
imports both. `run` times `SqlDashboard.dashboard` (every figure) and `sessions_of` (a
drill-down page) for several filters, each after one warm-up call, and prints the median and
the slowest of `--repeat` runs in milliseconds, and the median CPU time of the bench's process
(all of the work on SQLite, so the machine's other load does not count in it; on PostgreSQL
only the client's part). Results go to `bench/out/dashboard-<engine>.json`
(`dashboard-<engine>-direct.json` with `--direct`).

`--direct` times `DirectDashboard`, the same figures computed from the base tables at each
call (the queries before the rollup of migration 0010): the plain alternative, on the same
data. `--no-migrate` leaves the database at its revision (to time `--direct` on a database
from before the rollup).
"""

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from bench.keys import bench_keys
from stepout.adapters.db import Database, tenancy
from stepout.adapters.db.dashboard import DirectDashboard, SqlDashboard
from stepout.crypto.keyfile import generate as generate_key_file
from stepout.domain.events import Event
from stepout.domain.instants import now
from stepout.policy.model import load_policy
from stepout.services.dashboard import DashboardFilter, ExitRateThreshold
from stepout.services.importing import import_records
from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

OUT = Path(__file__).parent / "out"
GROUP_FILE = OUT / "records-1000000-1.jsonl"
SMALL_FILE = OUT / "records-100000-2-small.jsonl"
ZONE = "America/New_York"
YEAR = (date(2026, 10, 1), date(2027, 9, 30))  # the generated year, and more


def _small_records() -> Path:
    """100,000 sessions of practice `small`, with ids that cannot meet the group's."""
    if not SMALL_FILE.exists():
        plain = OUT / "records-100000-2.jsonl"
        with plain.open("wb") as f:
            write_jsonl(generate(GeneratorConfig(sessions=100_000, seed=2, practice="small")), f)
        with plain.open("rb") as src, SMALL_FILE.open("wb") as dst:
            for line in src:
                record = orjson.loads(line)
                record["id"] = "b-" + record["id"]
                if "session" in record:
                    record["session"] = "b-" + record["session"]
                dst.write(orjson.dumps(record) + b"\n")
        plain.unlink()
    return SMALL_FILE


def _group_records() -> Path:
    if not GROUP_FILE.exists():
        with GROUP_FILE.open("wb") as f:
            write_jsonl(generate(GeneratorConfig(sessions=1_000_000, seed=1)), f)
    return GROUP_FILE


def prepare(url: str) -> None:
    db = Database.open(url, migrate=False, keys=bench_keys())
    db.migrate()
    with db.uow() as uow:
        for practice in ("demo", "small"):
            if uow.records.practice(practice) is None:
                data = {"name": practice, "timezone": ZONE}
                uow.ledger.append([Event("practice.created", practice, practice, now(), data)])
        uow.commit()
    for path in (_small_records(), _group_records()):
        started = time.perf_counter()
        with path.open("rb") as f, db.uow() as uow:
            report = import_records(uow, f)
        print(
            f"imported {report.lines:,} lines of {path.name}"
            f" in {time.perf_counter() - started:.1f} s"
        )
    db.dispose()


def _filters() -> Iterator[tuple[str, DashboardFilter]]:
    for practice, label in (("small", "100k practice"), ("demo", "1M group")):
        yield f"{label}, the whole year", DashboardFilter(practice, *YEAR)
        yield (
            f"{label}, one quarter",
            DashboardFilter(practice, date(2027, 1, 1), date(2027, 3, 31)),
        )
        yield (
            f"{label}, one month",
            DashboardFilter(practice, date(2026, 11, 1), date(2026, 11, 30)),
        )
        yield (
            f"{label}, one therapist, the year",
            DashboardFilter(practice, *YEAR, therapist="t-003"),
        )
        yield (
            f"{label}, reason technical, the year",
            DashboardFilter(practice, *YEAR, reason="technical"),
        )


def _time(call: Any, repeat: int) -> tuple[float, float, float]:
    """Median and slowest wall-clock ms of `repeat` calls, and the median of this process's
    CPU ms (all of SQLite's work; on PostgreSQL only the client's)."""
    call()  # warm-up: caches, plans
    runs, cpu = [], []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        call()
        runs.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
    return statistics.median(runs), max(runs), statistics.median(cpu)


def run(url: str, repeat: int, direct: bool = False, migrate: bool = True) -> None:
    db = Database.open(url, migrate=False, keys=bench_keys())
    if migrate:
        db.migrate()  # the dashboard's index (0009) and rollup (0010), on an older database
    kind = DirectDashboard if direct else SqlDashboard
    threshold = ExitRateThreshold.of(load_policy())
    results = []
    for label, f in _filters():
        with tenancy.scope(f.practice), db.uow(read_only=True) as uow:
            queries = kind(uow.connection)
            figures = queries.dashboard(f, threshold)
            median, worst, cpu = _time(lambda q=queries, f=f: q.dashboard(f, threshold), repeat)
            drill_median, _, _ = _time(lambda q=queries, f=f: q.sessions_of(f, 200), repeat)
        row = {
            "filter": label,
            "sessions": figures.totals.sessions,
            "exits": figures.totals.exits,
            "dashboard_ms": round(median, 1),
            "dashboard_worst_ms": round(worst, 1),
            "dashboard_cpu_ms": round(cpu, 1),
            "drill_down_ms": round(drill_median, 1),
        }
        results.append(row)
        print(orjson.dumps(row).decode(), flush=True)
    engine = db.engine.dialect.name
    db.dispose()
    suffix = "-direct" if direct else ""
    (OUT / f"dashboard-{engine}{suffix}.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("prepare", "run"))
    parser.add_argument("--database-url", default=f"sqlite:///{OUT / 'dashboard.db'}")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--direct", action="store_true", help="time DirectDashboard")
    parser.add_argument("--no-migrate", action="store_true", help="leave the schema as it is")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    key_file = OUT / "dashboard.key"  # one key file for both commands, unless one is named
    if "STEPOUT_SECRET_KEY_FILE" not in os.environ:
        if not key_file.exists():
            generate_key_file(key_file)
        os.environ["STEPOUT_SECRET_KEY_FILE"] = str(key_file)
    tenancy.set_process_default(tenancy.ALL)  # as the command line: every practice
    if args.command == "prepare":
        prepare(args.database_url)
    else:
        run(args.database_url, args.repeat, args.direct, not args.no_migrate)


if __name__ == "__main__":
    main()
