"""Attack test 6(e), long: writer processes declaring exits concurrently through the workflow,
killed with SIGKILL at random moments, round after round; after each round every acknowledged
exit (of every round so far) is stored, every ledger write has its audit record and the
reverse, both chains verify, and on SQLite `PRAGMA integrity_check` is ok (tests/crashing.py).

    python -m bench.crash [--rounds 50] [--writers 4] [--max-delay 0.8] [--seed 1]
                          [--database-url URL]

Default: a fresh SQLite file in bench/out. A PostgreSQL database should be empty (or one a
previous run used). Figures are printed and written to bench/out/crash-results-<engine>.json.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import orjson
from tests import crashing

from bench.keys import bench_keys

OUT = Path(__file__).parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--max-delay", type=float, default=0.8, help="seconds, after all write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in bench/out")
    args = parser.parse_args()
    bench_keys()  # the writers find the key file through STEPOUT_SECRET_KEY_FILE
    OUT.mkdir(exist_ok=True)
    url = args.database_url
    if url is None:
        db_file = OUT / "crash.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{db_file}"
    engine = "sqlite" if url.startswith("sqlite") else "postgresql"

    try:
        figures = crashing.crash_rounds(
            url, args.rounds, args.writers, seed=args.seed, max_delay=args.max_delay,
            report=lambda line: print(line, flush=True),
        )  # fmt: skip
    except crashing.Problem as problem:
        print(f"FAILED: {problem}", file=sys.stderr)
        raise SystemExit(1) from None
    summary = {"engine": engine, "writers": args.writers, **dataclasses.asdict(figures)}
    summary["seconds"] = round(figures.seconds, 1)
    (OUT / f"crash-results-{engine}.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2)
    )
    print(
        f"{figures.rounds} rounds, {figures.kills} writers killed with SIGKILL, "
        f"{figures.acknowledged:,} acknowledged exits checked (none lost, each audited), "
        f"ledger {figures.ledger_entries:,} and audit trail {figures.audit_entries:,} entries "
        f"verified after every round; {summary['seconds']} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
