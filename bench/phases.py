"""One benchmark phase per process, so that each peak-memory figure is its own.

    python -m bench.phases PHASE DATABASE_URL [ARG]

prints one JSON object: the phase, seconds, peak RSS in MiB, and what it counted.
"""

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from bench.keys import bench_keys
from stepout.adapters.db import Database, tenancy
from stepout.domain.instants import parse_instant
from stepout.policy.model import load_policy
from stepout.services.importing import import_records
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit, run_billing

AS_OF = parse_instant("2027-11-01T00:00:00+00:00")  # after the generated year
SQL_RULES = ("absence-too-long", "client-not-informed", "billed-code-unsupported")


def _import(db: Database, arg: str) -> dict[str, Any]:
    with Path(arg).open("rb") as f, db.uow() as uow:
        report = import_records(uow, f)
    return {"records": report.lines}


def _audit(db: Database, arg: str) -> dict[str, Any]:
    rules = SQL_RULES if arg == "three" else None
    with db.uow(read_only=True) as uow:
        findings = run_audit(uow.records, Selection(), load_policy(), AS_OF, rules)
    by_rule: dict[str, int] = {}
    for f in findings:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    return {"findings": len(findings), "by_rule": by_rule}


def _billing(db: Database, arg: str) -> dict[str, Any]:
    with db.uow(read_only=True) as uow:
        count = unsupported = 0
        for line in run_billing(uow.records, Selection()):
            count += 1
            unsupported += line.status == "unsupported"
    return {"sessions": count, "unsupported": unsupported}


def _sql(db: Database, arg: str) -> dict[str, Any]:
    from bench.reference_sql import QUERIES

    counts = {}
    with db.engine.connect() as conn:
        for rule, query in QUERIES.items():
            counts[rule] = len(conn.execute(text(query)).fetchall())
    return {"by_rule": counts, "findings": sum(counts.values())}


PHASES: dict[str, Callable[[Database, str], dict[str, Any]]] = {
    "import": _import,
    "audit": _audit,
    "billing": _billing,
    "sql": _sql,
}


def main() -> None:
    phase, url = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else ""
    tenancy.set_process_default(tenancy.ALL)  # as the command line: every practice
    db = Database.open(url, migrate=True, keys=bench_keys())
    started = time.perf_counter()
    result = PHASES[phase](db, arg)
    seconds = time.perf_counter() - started
    db.dispose()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(
        orjson.dumps(
            {
                "phase": phase,
                "arg": arg,
                "seconds": round(seconds, 3),
                "peak_mib": round(peak_mib, 1),
                **result,
            }
        ).decode()
        + "\n"
    )


if __name__ == "__main__":
    main()
