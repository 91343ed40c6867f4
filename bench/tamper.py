"""Attack test 6(c), long: a clean chain of 100,000 entries (the ledger and the audit trail)
verifies with no false alarm, then random tamperings of every kind, each on a fresh copy of the
database, are each found at the right chain and entry.

    python -m bench.tamper [--entries 100000] [--tamperings 5] [--seed 1] [--database-url URL]

The database is an SQLite file in bench/out (default) or, with --database-url, a PostgreSQL
database (it must be empty; copies are made with CREATE DATABASE … TEMPLATE). The ledger is
filled by importing synthetic sessions, the audit trail with reads of them. Tamperings are made
as someone with the database's owner rights would (tests/tampering.py) and checked with the
same code as `stepout verify [--checkpoint]` (`stepout.services.checkpoint.check`). Figures
are printed and written to bench/out/tamper-results.json.
"""

import argparse
import io
import random
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql
from sqlalchemy import Connection
from tests.tampering import (
    CHAINS,
    PRACTICE,
    ChainTable,
    delete,
    flip_byte,
    forge,
    forge_appended,
    hmac_with,
    plain_sha256,
    rewrite_from,
    swap,
    truncate_tail,
)

from bench.keys import bench_keys
from stepout.adapters.db import Database, tenancy
from stepout.crypto.keys import Keys
from stepout.domain.instants import now
from stepout.services.audit import cli_caller
from stepout.services.checkpoint import Checkpoint, Report, check, take
from stepout.services.importing import import_records
from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

OUT = Path(__file__).parent / "out"
ENTRIES_PER_SESSION = 1.057  # ledger entries per generated session (exits and concerns too)
WRONG_KEY = b"w" * 32
REWRITE_SPAN = 2_000  # a rewrite re-chains at most the last entries (each is an UPDATE)


@dataclass(frozen=True)
class Kind:
    """A kind of tampering: what it does to entry k of a chain of n entries (returning the
    entry that should be named), and whether the chain alone shows it."""

    name: str
    apply: Callable[[Connection, ChainTable, int, int, Keys], int]
    needs_checkpoint: bool = False


def _flip(column: str | None) -> Callable[[Connection, ChainTable, int, int, Keys], int]:
    def apply(conn: Connection, t: ChainTable, k: int, n: int, keys: Keys) -> int:
        flip_byte(conn, t, k, column or t.text_column)
        return k

    return apply


def _other(conn: Connection, t: ChainTable, k: int, n: int, keys: Keys) -> int:
    flip_byte(conn, t, k, t.other_column)
    return k


def _delete(conn: Connection, t: ChainTable, k: int, n: int, keys: Keys) -> int:
    delete(conn, t, min(k, n - 1))  # deleting the last entry is a cut tail (below)
    return min(k, n - 1)


def _swap(conn: Connection, t: ChainTable, k: int, n: int, keys: Keys) -> int:
    a = min(k, n - 1)
    b = random.randint(a + 1, n)
    swap(conn, t, a, b)
    return a


def _forge_sha(conn: Connection, t: ChainTable, k: int, n: int, keys: Keys) -> int:
    forge(conn, t, k, plain_sha256)
    return k


def _forge_hmac(conn: Connection, t: ChainTable, k: int, n: int, keys: Keys) -> int:
    forge(conn, t, k, hmac_with, WRONG_KEY)
    return k


def _append_forged(conn: Connection, t: ChainTable, k: int, n: int, keys: Keys) -> int:
    return forge_appended(conn, t, plain_sha256, WRONG_KEY)


def _truncate(conn: Connection, t: ChainTable, k: int, n: int, keys: Keys) -> int:
    truncate_tail(conn, t, min(k, n - 1))
    return min(k, n - 1) + 1  # the first entry missing


def _rewrite(conn: Connection, t: ChainTable, k: int, n: int, keys: Keys) -> int:
    rewrite_from(conn, t, max(k, n - REWRITE_SPAN), keys.chain_key)
    return n  # the checkpoint's entry no longer has its hash


KINDS = [
    Kind("flip a byte of the entry's text", _flip(None)),
    Kind("flip a byte of another column", _other),
    Kind("flip a byte of the hash", _flip("hash")),
    Kind("flip a byte of prev_hash", _flip("prev_hash")),
    Kind("delete an entry", _delete),
    Kind("swap two entries' seq", _swap),
    Kind("forge an entry, plain SHA-256", _forge_sha),
    Kind("forge an entry, HMAC under another key", _forge_hmac),
    Kind("append a forged entry", _append_forged),
    # The chain alone cannot show these two. (A cut ledger tail that took records with it does
    # show in the query tables' counts: a `projections` problem, not counted here.)
    Kind("cut the tail", _truncate, needs_checkpoint=True),
    Kind("rewrite history with the key", _rewrite, needs_checkpoint=True),
]


class Store:
    """The original database and its copies, on SQLite or PostgreSQL."""

    def __init__(self, url: str | None) -> None:
        OUT.mkdir(exist_ok=True)
        if url is None:
            self.file: Path | None = OUT / "tamper.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.file}{suffix}").unlink(missing_ok=True)
            self.url = f"sqlite:///{self.file}"
        else:
            self.file, self.url = None, url
        self.copies = 0

    def _admin(self) -> str:
        base = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
        return f"{base.rpartition('/')[0]}/postgres"

    def copy(self) -> tuple[str, Callable[[], None]]:
        """A fresh copy's URL, and how to drop it."""
        self.copies += 1
        if self.file is not None:
            target = OUT / "tamper-copy.db"
            for suffix in ("", "-wal"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
                if Path(f"{self.file}{suffix}").exists():
                    shutil.copy(f"{self.file}{suffix}", f"{target}{suffix}")

            def remove() -> None:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{target}{suffix}").unlink(missing_ok=True)

            return f"sqlite:///{target}", remove
        name = f"stepout_tamper_copy_{secrets.token_hex(4)}"
        source = self.url.rpartition("/")[2]
        with psycopg.connect(self._admin(), autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(source)
                )
            )

        def drop() -> None:
            with psycopg.connect(self._admin(), autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

        return f"{self.url.rpartition('/')[0]}/{name}", drop


def build(db: Database, entries: int, seed: int) -> None:
    sessions = int(entries / ENTRIES_PER_SESSION) + 10
    buffer = io.BytesIO()
    write_jsonl(generate(GeneratorConfig(sessions=sessions, seed=seed)), buffer)
    buffer.seek(0)
    with db.uow() as uow:
        import_records(uow, buffer, actor="bench")
    caller = cli_caller(PRACTICE)
    with db.uow() as uow:
        for i in range(entries):
            uow.audit.record(caller.record("session.read", f"s-{i % sessions + 1:07d}"))
        uow.commit()


def named(report: Report, chain: str) -> int | None:
    """The entry the report names first for `chain`."""
    for problem in report.problems:
        if problem.chain == chain:
            return problem.entry
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000, help="per chain, at least")
    parser.add_argument("--tamperings", type=int, default=5, help="per kind and chain")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="default: an SQLite file in bench/out")
    args = parser.parse_args()
    keys = bench_keys()
    tenancy.set_process_default(tenancy.ALL)
    random.seed(args.seed)
    store = Store(args.database_url)

    started = time.perf_counter()
    db = Database.open(store.url, keys=keys, migrate=False)
    try:
        db.migrate()
        build(db, args.entries, args.seed)
        built = time.perf_counter() - started
        t0 = time.perf_counter()
        clean = check(db, keys)
        clean_s = time.perf_counter() - t0
        checkpoint: Checkpoint = take(db, keys, store.url, now())
        clean_cp = check(db, keys, checkpoint)
    finally:
        db.dispose()
    lengths = {name: result.checked for name, result in clean.results.items()}
    print(
        f"built in {built:.1f} s: ledger {lengths['ledger']:,} entries, audit trail "
        f"{lengths['audit']:,}; clean verify {clean_s:.2f} s, false alarms "
        f"{len(clean.problems) + len(clean_cp.problems)}",
        flush=True,
    )

    rows: list[dict[str, Any]] = []
    verify_seconds = 0.0
    for chain in CHAINS:
        n = lengths[chain.chain]
        for kind in KINDS:
            tried = detected = alone = 0
            for _ in range(args.tamperings):
                k = random.randint(1, n)
                url, drop = store.copy()
                copy = Database.open(url, keys=keys, migrate=False)
                try:
                    with copy.engine.begin() as conn:
                        expected = kind.apply(conn, chain, k, n, keys)
                    t0 = time.perf_counter()
                    without = check(copy, keys)
                    with_cp = check(copy, keys, checkpoint)
                    verify_seconds += time.perf_counter() - t0
                finally:
                    copy.dispose()
                    drop()
                tried += 1
                alone += named(without, chain.chain) == expected
                detected += named(with_cp, chain.chain) == expected
                if kind.needs_checkpoint and named(without, chain.chain) is not None:
                    raise SystemExit(f"{kind.name}: found without a checkpoint, unexpectedly")
            rows.append(
                {
                    "chain": chain.chain,
                    "kind": kind.name,
                    "tried": tried,
                    "detected_with_checkpoint": detected,
                    "detected_without_checkpoint": alone,
                }
            )
            print(
                f"{chain.chain:6}  {kind.name:42} tried {tried:3}  found {detected:3} "
                f"(without a checkpoint: {alone})",
                flush=True,
            )
    tried = sum(r["tried"] for r in rows)
    found = sum(r["detected_with_checkpoint"] for r in rows)
    alone_found = sum(r["detected_without_checkpoint"] for r in rows)
    summary = {
        "engine": "sqlite" if store.file is not None else "postgresql",
        "ledger_entries": lengths["ledger"],
        "audit_entries": lengths["audit"],
        "clean_verify_s": round(clean_s, 2),
        "false_alarms": len(clean.problems) + len(clean_cp.problems),
        "tamperings_tried": tried,
        "tamperings_detected": found,
        "verify_s_total": round(verify_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "kinds": rows,
    }
    (OUT / "tamper-results.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print(
        f"{tried} tamperings tried, {found} found at the right chain and entry; "
        f"{summary['false_alarms']} false alarms on the clean chains; "
        f"{summary['seconds']} s in all",
        flush=True,
    )
    alone_expected = sum(
        r["tried"] for r, kind in zip(rows, KINDS * len(CHAINS), strict=True)
        if not kind.needs_checkpoint
    )  # fmt: skip
    if found != tried or summary["false_alarms"] or alone_found != alone_expected:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
