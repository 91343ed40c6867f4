"""Importing a large schedule (`stepout import schedule`): 100,000 appointments as CSV and as
iCalendar, into a fresh database.

    python -m bench.schedule [--appointments 100000] [--database-url URL]

Makes a practice (America/New_York) with 50 therapists and 20 rooms, writes the two files
(synthetic, deterministic: `bench/out/schedule-<n>.csv` and `.ics`), then times, in one run:
- reading each file (the format's reader, with its per-entry checks);
- importing each (`import_schedule`: the checks against the store, the ledger append and the
  `appointments` projection, one transaction) into the same database (the files use
  different ids);
- re-importing the CSV (every appointment unchanged: nothing is written);
- the plain alternative on the same CSV: `csv.reader` and one `executemany` INSERT of the
  rows into a bare table of the same columns, without checks, ledger or chain.
Results go to `bench/out/schedule-<engine>.json`.
"""

import argparse
import csv
import io
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from bench.keys import bench_keys
from stepout.adapters.db import Database, tenancy
from stepout.adapters.schedule.csvfile import read_csv
from stepout.adapters.schedule.ics import read_ics
from stepout.cli.schedule import AccountsDirectory
from stepout.domain.schedule import Raw
from stepout.services.accounts import AccountService
from stepout.services.schedule import import_schedule

OUT = Path(__file__).parent / "out"
THERAPISTS = 50
ROOMS = 20
HEADER = "id,therapist,client,room,modality,start,end,billed_codes\n"


def _slots(n: int) -> list[tuple[int, int, int, int]]:
    """(index, day, hour, therapist) of n appointments: eight a day per therapist, weekdays
    from 2027-01-04 on."""
    per_day = THERAPISTS * 8
    return [(i, i // per_day, 9 + i % 8, i // 8 % THERAPISTS) for i in range(n)]


def _date(day: int) -> tuple[int, int, int]:
    from datetime import date, timedelta

    d = date(2027, 1, 4) + timedelta(days=day // 5 * 7 + day % 5)
    return d.year, d.month, d.day


def write_csv(path: Path, n: int) -> None:
    with path.open("w") as f:
        f.write(HEADER)
        for i, day, hour, t in _slots(n):
            y, m, d = _date(day)
            modality = "telehealth" if i % 3 == 0 else "in_person"
            f.write(
                f"c-{i},t-{t:03d},c-{i % 5000:05d},room-{t % ROOMS:02d},{modality},"
                f"{y}-{m:02d}-{d:02d}T{hour:02d}:00:00-05:00,"
                f"{y}-{m:02d}-{d:02d}T{hour:02d}:50:00-05:00,90834\n"
            )


def write_ics(path: Path, n: int) -> None:
    with path.open("w", newline="") as f:
        f.write("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Stepout bench//EN\r\n")
        for i, day, hour, t in _slots(n):
            y, m, d = _date(day)
            modality = "telehealth" if i % 3 == 0 else "in_person"
            f.write(
                f"BEGIN:VEVENT\r\nUID:i-{i}@bench.example\r\nDTSTAMP:20261201T000000Z\r\n"
                f"DTSTART;TZID=America/New_York:{y}{m:02d}{d:02d}T{hour:02d}0000\r\n"
                f"DTEND;TZID=America/New_York:{y}{m:02d}{d:02d}T{hour:02d}5000\r\n"
                f"X-STEPOUT-THERAPIST:t-{t:03d}\r\nX-STEPOUT-CLIENT:c-{i % 5000:05d}\r\n"
                f"X-STEPOUT-ROOM:room-{t % ROOMS:02d}\r\nX-STEPOUT-MODALITY:{modality}\r\n"
                "X-STEPOUT-CODES:90834\r\nEND:VEVENT\r\n"
            )
        f.write("END:VCALENDAR\r\n")


def _timed(what: str, results: dict[str, Any], fn: Any) -> Any:
    started = time.perf_counter()
    value = fn()
    results[what] = round(time.perf_counter() - started, 2)
    print(f"{what}: {results[what]} s", file=sys.stderr)
    return value


def _import(db: Database, entries: list[Raw]) -> dict[str, int]:
    with db.uow() as uow:
        report = import_schedule(
            uow, entries, practice="bench", directory=AccountsDirectory(uow.accounts)
        )
    return report.effects


def _plain(db: Database, data: bytes) -> int:
    """csv.reader and one executemany INSERT: no checks, no ledger, no chain."""
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))[1:]
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS plain_appointments"))
        conn.execute(
            text(
                "CREATE TABLE plain_appointments (id TEXT PRIMARY KEY, therapist TEXT, "
                "client TEXT, room TEXT, modality TEXT, start_at TEXT, end_at TEXT, codes TEXT)"
            )
        )
        keys = ("id", "therapist", "client", "room", "modality", "start_at", "end_at", "codes")
        conn.execute(
            text(
                "INSERT INTO plain_appointments VALUES "
                "(:id, :therapist, :client, :room, :modality, :start_at, :end_at, :codes)"
            ),
            [dict(zip(keys, r, strict=True)) for r in rows],
        )
        conn.execute(text("DROP TABLE plain_appointments"))
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    n = args.appointments
    OUT.mkdir(exist_ok=True)
    csv_path, ics_path = OUT / f"schedule-{n}.csv", OUT / f"schedule-{n}.ics"
    if not csv_path.exists():
        write_csv(csv_path, n)
    if not ics_path.exists():
        write_ics(ics_path, n)
    url = args.database_url
    if url is None:
        path = OUT / "schedule.db"
        for leftover in OUT.glob("schedule.db*"):
            leftover.unlink()
        url = f"sqlite:///{path}"
    tenancy.set_process_default(tenancy.ALL)
    db = Database.open(url, keys=bench_keys(), migrate=False)
    db.migrate()
    try:
        accounts = AccountService(db.uow)
        accounts.add_practice("bench", "Synthetic bench practice", timezone="America/New_York")
        for t in range(THERAPISTS):
            accounts.add_user(f"t-{t:03d}", "bench", "therapist", None)
        for r in range(ROOMS):
            accounts.add_room(f"room-{r:02d}", "bench", f"Room {r}")
        results: dict[str, Any] = {"appointments": n, "engine": db.dialect}
        data = csv_path.read_bytes()
        entries = _timed("csv read", results, lambda: list(read_csv(data, "bench")))
        effects = _timed("csv import", results, lambda: _import(db, entries))
        assert effects["schedule"] == n, effects
        again = _timed("csv re-import", results, lambda: _import(db, list(read_csv(data, "bench"))))
        assert again["unchanged"] == n, again
        _timed("plain csv insert", results, lambda: _plain(db, data))
        ics = ics_path.read_bytes()
        events = _timed("ics read", results, lambda: list(read_ics(ics, "bench", "UTC")))
        effects = _timed("ics import", results, lambda: _import(db, events))
        assert effects["schedule"] == n, effects
        counts = db.projection_counts()["appointments"]
        assert counts == (2 * n, 2 * n), counts
        for fmt in ("csv", "ics"):
            total = results[f"{fmt} read"] + results[f"{fmt} import"]
            results[f"{fmt} appointments/s"] = round(n / total)
        results["csv vs plain"] = round(
            (results["csv read"] + results["csv import"]) / results["plain csv insert"], 1
        )
        (OUT / f"schedule-{db.dialect}.json").write_bytes(
            orjson.dumps(results, option=orjson.OPT_INDENT_2)
        )
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
