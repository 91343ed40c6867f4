"""Import, audit and billing on generated records, against plain SQL on the same tables.

    python -m bench.run [--sessions 1000000] [--database-url URL]

Each phase runs in its own process (see phases.py) so that its peak memory is its own.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

OUT = Path(__file__).parent / "out"


def _phase(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.phases", *args],
        check=True,
        capture_output=True,
        cwd=Path(__file__).parent.parent,
    )
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    print(orjson.dumps(result).decode(), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in bench/out")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)

    records = OUT / f"records-{args.sessions}-{args.seed}.jsonl"
    if not records.exists():
        started = time.perf_counter()
        with records.open("wb") as f:
            count = write_jsonl(
                generate(GeneratorConfig(sessions=args.sessions, seed=args.seed)), f
            )
        print(f"generated {count:,} records in {time.perf_counter() - started:.1f} s", flush=True)
    lines = sum(1 for _ in records.open("rb"))

    url = args.database_url
    if url is None:
        db_file = OUT / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{db_file}"

    imported = _phase("import", url, str(records))
    full = _phase("audit", url, "all")
    billing = _phase("billing", url)
    three = _phase("audit", url, "three")
    sql = _phase("sql", url)

    summary = {
        "sessions": args.sessions,
        "records": lines,
        "import_records_per_s": round(lines / imported["seconds"]),
        "import_peak_mib": imported["peak_mib"],
        "audit_s": full["seconds"],
        "audit_peak_mib": full["peak_mib"],
        "billing_s": billing["seconds"],
        "billing_peak_mib": billing["peak_mib"],
        "three_rules_audit_s": three["seconds"],
        "three_rules_sql_s": sql["seconds"],
        "ratio_audit_to_sql": round(three["seconds"] / sql["seconds"], 2),
        "same_findings": three["by_rule"] == sql["by_rule"],
    }
    (OUT / "results.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
