"""The findings store (`stepout.adapters.db.findings_store`) on a practice of 100,000 sessions.

    python -m bench.findings prepare [--database-url URL]   # once: a fresh database
    python -m bench.findings run [--database-url URL] [--repeat 5]

`prepare` imports practice `small` (the 100,000 generated sessions of `bench.dashboard`,
seed 2, America/New_York) into its own database. `run` times, each as the median and the
slowest of `--repeat` runs in milliseconds:

- `refresh`: an audit run of the whole practice written to the store (forced);
- `check`: the staleness check the dashboard makes when it opens (nothing to refresh);
- `chart`: the chart's counts for the generated year;
- `attention`: the top of the dashboard (open concerns, the last week's findings with their
  review state, older ones not resolved);
- `first step, before`: locating a finding nobody has reviewed as the review service did
  before the store (the practice's whole audit), and `after`: through the store (current);
- `first step, stale store`: the same when the ledger has moved on (the store is refreshed in
  the step's transaction).

Results go to `bench/out/findings-<engine>.json`.
"""

import argparse
import io
import os
import statistics
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson

from bench.dashboard import OUT, ZONE, _small_records
from bench.keys import bench_keys
from stepout.adapters.db import Database, tenancy
from stepout.adapters.db.attention import open_concerns
from stepout.adapters.db.findings_store import FindingsStore, lookup, refresh
from stepout.crypto.keyfile import generate as generate_key_file
from stepout.domain.events import Event
from stepout.domain.instants import MICROS_PER_DAY, now, parse_instant
from stepout.domain.reviews import finding_key
from stepout.policy.model import load_policy
from stepout.services.dashboard import DashboardFilter
from stepout.services.importing import import_records
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit
from stepout.services.reviews import locate, with_reviews

PRACTICE = "small"
AS_OF = parse_instant("2027-10-15T12:00:00+00:00")  # after the generated year


def prepare(url: str) -> None:
    db = Database.open(url, migrate=False, keys=bench_keys())
    db.migrate()
    with db.uow() as uow:
        if uow.records.practice(PRACTICE) is None:
            data = {"name": PRACTICE, "timezone": ZONE}
            uow.ledger.append([Event("practice.created", PRACTICE, PRACTICE, now(), data)])
        uow.commit()
    started = time.perf_counter()
    with _small_records().open("rb") as f, db.uow() as uow:
        report = import_records(uow, f)
    print(f"imported {report.lines:,} lines in {time.perf_counter() - started:.1f} s")
    db.dispose()


def _time(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    call()  # warm-up
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(runs), 1), round(max(runs), 1)


def _move_the_ledger(db: Database) -> None:
    """Import one more session of the practice, so that the store is stale."""
    sid = f"bench-{time.time_ns()}"
    line = orjson.dumps(
        {"kind": "session", "id": sid, "practice": PRACTICE, "therapist": "t-001",
         "client": "c-1", "room": "r-1", "modality": "in_person",
         "start": "2027-10-01T09:00:00+00:00", "end": "2027-10-01T09:50:00+00:00",
         "billed_codes": ["90834"]}
    )  # fmt: skip
    with db.uow() as uow:
        import_records(uow, io.BytesIO(line + b"\n"))


def run(url: str, repeat: int) -> None:
    db = Database.open(url, migrate=False, keys=bench_keys())
    db.migrate()
    policy = load_policy()
    results: dict[str, Any] = {}
    run_ = refresh(db, PRACTICE, policy, AS_OF, force=True)
    results["findings"] = run_.findings
    results["refresh_ms"] = _time(lambda: refresh(db, PRACTICE, policy, AS_OF, force=True), repeat)

    def check() -> None:
        with db.uow(read_only=True) as uow:
            store = FindingsStore(uow.connection)
            assert store.stale(store.run(PRACTICE), policy, ZONE, AS_OF) is None

    results["check_ms"] = _time(check, repeat)
    year = DashboardFilter(PRACTICE, date(2026, 10, 1), date(2027, 9, 30))

    def chart() -> None:
        with db.uow(read_only=True) as uow:
            FindingsStore(uow.connection).week_counts(year, ZONE)

    results["chart_ms"] = _time(chart, repeat)

    def attention() -> None:
        """The top of the dashboard: open concerns, the last week's findings with their
        review state (an audit of a week), and older findings not resolved (the store)."""
        with db.uow(read_only=True) as uow:
            week = Selection(practice=PRACTICE, date_from=date(2027, 9, 23))
            found = run_audit(uow.records, week, policy, AS_OF)
            with_reviews(uow.reviews, PRACTICE, found)
            store = FindingsStore(uow.connection)
            store.waiting_before(PRACTICE, AS_OF - 8 * MICROS_PER_DAY)
            open_concerns(uow.connection, PRACTICE, AS_OF - 3 * MICROS_PER_DAY)

    results["attention_ms"] = _time(attention, repeat)
    with db.uow(read_only=True) as uow:
        last = FindingsStore(uow.connection).findings(PRACTICE, policy.version)[-1]
    key = finding_key(PRACTICE, last)

    def first_step(use_store: bool) -> None:
        with db.uow() as uow:  # a writing unit of work, as the review step's
            review = locate(uow, PRACTICE, key, policy, AS_OF, None, lookup if use_store else None)
            assert review.state == "open"

    results["first_step_before_ms"] = _time(lambda: first_step(False), repeat)
    results["first_step_after_ms"] = _time(lambda: first_step(True), repeat)

    _move_the_ledger(db)
    started = time.perf_counter()
    first_step(True)
    results["first_step_stale_store_ms"] = round((time.perf_counter() - started) * 1000, 1)
    with db.uow() as uow:
        lookup(uow, PRACTICE, key, policy, AS_OF)
        uow.commit()
    engine = db.engine.dialect.name
    db.dispose()
    print(orjson.dumps(results).decode())
    (OUT / f"findings-{engine}.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("prepare", "run"))
    parser.add_argument("--database-url", default=f"sqlite:///{OUT / 'findings.db'}")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    key_file = OUT / "findings.key"
    if "STEPOUT_SECRET_KEY_FILE" not in os.environ:
        if not key_file.exists():
            generate_key_file(key_file)
        os.environ["STEPOUT_SECRET_KEY_FILE"] = str(key_file)
    tenancy.set_process_default(tenancy.ALL)
    if args.command == "prepare":
        prepare(args.database_url)
    else:
        run(args.database_url, args.repeat)


if __name__ == "__main__":
    main()
