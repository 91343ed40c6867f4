"""Crash test support (attack test 6(e)): writer processes declaring exits through the
workflow, killed with SIGKILL at random moments, and what must hold after each round.

Each writer (`python -m tests.crashing URL ROUND WRITER`) loops: start a session, declare an
exit, return, end the session, each command through `Workflow.run` with its audit record in
the same transaction, on a real `Database`. It prints an exit's id only after the command that
declared it returned, i.e. after its commit: that exit is *acknowledged*. After a round:

- every acknowledged exit is stored (its projection row and its `exit.declared` entry);
- every ledger write of the writers has its audit record, and every audit record of theirs its
  ledger write (the two commit together or not at all);
- both chains verify from the first entry;
- on SQLite, `PRAGMA integrity_check` is ok.

Used by tests/e2e/test_crash_audit.py (a few rounds) and bench/crash.py (many).
"""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sqlalchemy import text

ROOT: Final = Path(__file__).resolve().parents[1]
PRACTICE: Final = "demo"
SAFEGUARDS: Final = ("records_secured", "screen_locked", "door_closed")
ACTOR_PREFIX: Final = "crash-writer-"
# The command behind each ledger entry a writer makes, as its audit action names it.
ACTIONS: Final = {
    "session.started": "session.start",
    "exit.declared": "exit.declare",
    "exit.returned": "exit.return",
    "session.ended": "session.end",
}


def writer_main(url: str, round_: int, writer: int) -> None:  # pragma: no cover - a subprocess
    from stepout.adapters.db import Database, tenancy
    from stepout.domain.commands import DeclareExit, EndSession, Return, StartSession
    from stepout.services.audit import Caller
    from stepout.services.workflow import Workflow
    from tests.keys import run_keys

    tenancy.set_process_default(tenancy.ALL)
    db = Database.open(url, keys=run_keys(), migrate=False)
    flow = Workflow(db.uow)
    actor = f"{ACTOR_PREFIX}{writer}"
    caller = Caller(actor, PRACTICE, "127.0.0.1", "api")
    out = sys.stdout
    i = 0
    while True:
        # A therapist per round, writer and session: a killed writer may leave an exit open.
        therapist = f"t-crash-{round_}-{writer}-{i}"
        session = flow.run(
            StartSession(
                practice=PRACTICE, actor=actor, therapist=therapist, client="client-0001",
                room=f"room-{writer}", modality="telehealth", billed_codes=("90837",),
            ),
            caller=caller,
        ).record.id  # fmt: skip
        exit_id = flow.run(
            DeclareExit(
                practice=PRACTICE, actor=actor, session=session, reason="technical",
                client_informed="before_leaving", explanation="The camera froze.",
                safeguards=SAFEGUARDS, expected_minutes=2,
            ),
            caller=caller,
        ).record.id  # fmt: skip
        out.write(f"{exit_id}\n")  # acknowledged: its commit returned
        out.flush()
        flow.run(Return(practice=PRACTICE, actor=actor, exit=exit_id), caller=caller)
        flow.run(EndSession(practice=PRACTICE, actor=actor, session=session), caller=caller)
        i += 1


@dataclass
class Figures:
    rounds: int = 0
    kills: int = 0  # writers killed by SIGKILL while writing
    acknowledged: int = 0  # acknowledged exits, checked after their round and every later one
    ledger_entries: int = 0  # the ledger's length after the last round
    audit_entries: int = 0
    seconds: float = 0.0
    per_round: list[int] = field(default_factory=list)


class Problem(AssertionError):
    """Something that must hold after a round does not."""


def start_writer(url: str, round_: int, writer: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "tests.crashing", url, str(round_), str(writer)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


class Collector(threading.Thread):
    """Reads a writer's standard output line by line as it comes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.lines: list[str] = []
        self.first = threading.Event()

    def run(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line:
                self.lines.append(line)
                self.first.set()
        self.first.set()


def run_round(
    url: str, round_: int, writers: int, rng: random.Random, max_delay: float = 0.8
) -> tuple[list[str], int]:
    """Start `writers` writers, let each acknowledge at least one exit, then kill each with
    SIGKILL at a random moment of the next `max_delay` seconds. Returns the acknowledged exit
    ids and the kills."""
    procs = [start_writer(url, round_, w) for w in range(writers)]
    collectors = [Collector(p) for p in procs]
    for c in collectors:
        c.start()
    kills = 0
    try:
        for c in collectors:
            if not c.first.wait(60):
                raise Problem("a writer did not acknowledge an exit within 60 s")
        begin = time.monotonic()
        moments = sorted((rng.uniform(0.0, max_delay), i) for i in range(writers))
        for moment, i in moments:
            time.sleep(max(0.0, begin + moment - time.monotonic()))
            proc = procs[i]
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)
        for c in collectors:
            c.join(30)
    for proc in procs:
        if proc.returncode != -signal.SIGKILL:
            assert proc.stderr is not None
            raise Problem(f"a writer ended by itself: {proc.stderr.read().decode()[-2000:]}")
        if proc.stderr is not None:
            proc.stderr.close()
        if proc.stdout is not None:
            proc.stdout.close()
    return [line for c in collectors for line in c.lines], kills


def check(url: str, acknowledged: list[str]) -> tuple[int, int]:
    """What must hold after a round (raises `Problem`); the chains' lengths."""
    from stepout.adapters.db import Database, tenancy
    from tests.keys import run_keys

    with tenancy.scope(tenancy.ALL):
        db = Database.open(url, keys=run_keys(), migrate=False)
        try:
            results = db.verify_chains()
            for name, result in results.items():
                if not result.ok:
                    raise Problem(f"{name} broken at entry {result.first_broken}: {result.reason}")
            with db.uow(read_only=True) as uow:
                lost = [x for x in acknowledged if uow.records.exit(x) is None]
            if lost:
                raise Problem(f"{len(lost)} acknowledged exits are not stored: {lost[:5]}")
            with db.engine.connect() as conn:
                declared = {
                    row[0]
                    for row in conn.execute(
                        text("SELECT subject FROM events WHERE kind = 'exit.declared'")
                    )
                }
                writes = {
                    (ACTIONS[kind], subject)
                    for kind, subject in conn.execute(
                        text(
                            "SELECT kind, subject FROM events WHERE actor LIKE :p "
                            "AND kind IN ('session.started', 'exit.declared', "
                            "'exit.returned', 'session.ended')"
                        ),
                        {"p": f"{ACTOR_PREFIX}%"},
                    )
                }
                audited = {
                    (action, target)
                    for action, target in conn.execute(
                        text(
                            "SELECT action, target FROM audit_log WHERE actor LIKE :p "
                            "AND outcome = 'ok'"
                        ),
                        {"p": f"{ACTOR_PREFIX}%"},
                    )
                }
        finally:
            db.dispose()
    if missing := [x for x in acknowledged if x not in declared]:
        raise Problem(f"{len(missing)} acknowledged exits have no ledger entry: {missing[:5]}")
    if unaudited := writes - audited:
        raise Problem(
            f"{len(unaudited)} ledger writes lack their audit record: {sorted(unaudited)[:5]}"
        )
    if orphans := audited - writes:
        raise Problem(f"{len(orphans)} audit records have no ledger write: {sorted(orphans)[:5]}")
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
        if verdict != [("ok",)]:
            raise Problem(f"PRAGMA integrity_check: {verdict[:5]}")
    return results["ledger"].checked, results["audit"].checked


def prepare(url: str) -> None:
    """A migrated database with the synthetic practice and a few records."""
    from stepout.adapters.db import Database, tenancy
    from tests.keys import run_keys
    from tests.tampering import populate

    with tenancy.scope(tenancy.ALL):
        db = Database.open(url, keys=run_keys(), migrate=False)
        try:
            db.migrate()
            populate(db, sessions=30, live=1, reads=10)
        finally:
            db.dispose()


def crash_rounds(
    url: str,
    rounds: int,
    writers: int,
    *,
    seed: int = 1,
    max_delay: float = 0.8,
    report: Callable[[str], object] | None = None,
) -> Figures:
    """Prepare the database, then run and check `rounds` rounds (`report` is told how each
    went). Raises `Problem` at the first round after which something does not hold."""
    rng = random.Random(seed)
    figures = Figures()
    started = time.perf_counter()
    prepare(url)
    every: list[str] = []  # every round's acknowledged exits, checked again after each round
    for r in range(rounds):
        acknowledged, kills = run_round(url, r, writers, rng, max_delay)
        every += acknowledged
        figures.ledger_entries, figures.audit_entries = check(url, every)
        figures.rounds += 1
        figures.kills += kills
        figures.acknowledged += len(acknowledged)
        figures.per_round.append(len(acknowledged))
        if report is not None:
            integrity = "; integrity_check ok" if url.startswith("sqlite") else ""
            report(
                f"round {r + 1}/{rounds}: {kills} writers killed, {len(acknowledged)} "
                f"acknowledged exits; all {len(every):,} so far stored and audited; ledger "
                f"{figures.ledger_entries:,} and audit trail {figures.audit_entries:,} entries "
                f"verified{integrity}"
            )
    figures.seconds = time.perf_counter() - started
    return figures


if __name__ == "__main__":  # pragma: no cover
    writer_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
