"""The web API under load, on loopback: exit cycles against the bare ASGI endpoint, and the
room displays' latency over Server-Sent Events.

    python -m bench.web_load                       # embedded SQLite, one server process
    python -m bench.web_load --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        --workers 2

It creates (in the database, before the server starts) one practice with a therapist, an API
token, a room, a display token and a session in progress per simulated client; starts
`uvicorn stepout.web.app:app_from_env --factory` on a free loopback port; then, for each
number of clients, runs `/healthz` and then the exit cycles for the same time, each from
client processes of their own; and last connects one SSE display per room and times each
exit and return to the display's event. Prints a table; results go to
bench/out/web-results-<engine>-<workers>w.json. See README.md for what each figure means.
"""

import argparse
import multiprocessing
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from bench import web_client
from bench.keys import bench_keys

OUT = Path(__file__).parent / "out"
ROOT = Path(__file__).parent.parent
HEALTH = "/healthz"  # the bare ASGI endpoint (no database): the baseline


# Setup


def populate(url: str, count: int) -> list[dict[str, str]]:
    """A practice with `count` therapists, each with an API token, a room with a display
    token and a session in progress in it. Names are synthetic and unique to this run."""
    from stepout.adapters.db import Database, tenancy
    from stepout.domain.commands import StartSession
    from stepout.services.accounts import AccountService
    from stepout.services.workflow import Workflow

    tenancy.set_process_default(tenancy.ALL)  # as the command line: every practice
    db = Database.open(url, migrate=False, keys=bench_keys())
    db.migrate()
    accounts = AccountService(db.uow)
    workflow = Workflow(db.uow)
    run = secrets.token_hex(3)
    practice = f"bench-{run}"
    accounts.add_practice(practice, "Synthetic benchmark practice")
    clients = []
    for i in range(count):
        username = f"b{run}-ther-{i:04d}"
        user = accounts.add_user(username, practice, "therapist", None)
        token = accounts.create_api_token(username)[1]
        room = f"room-{i:04d}"
        accounts.add_room(room, practice, f"Room {i}")
        room_token = accounts.create_room_token(room, practice)[1]
        session = workflow.run(
            StartSession(
                practice=practice,
                actor=user.id,
                therapist=user.id,
                client=f"synthetic-client-{i:04d}",
                room=room,
                modality="in_person",
                billed_codes=(),
            )
        ).record.id
        clients.append({"token": token, "session": session, "room": room, "room_token": room_token})
    db.dispose()
    return clients


# The server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url: str, workers: int) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "STEPOUT_DATABASE_URL": url,
            "STEPOUT_SECRET_FILE": str(OUT / "web-secret.key"),
            "PYTHONPATH": str(ROOT),
        }
        factory = "stepout.web.app:app_from_env"
        self.log = (OUT / "web-server.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                factory,
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
                "--timeout-graceful-shutdown",
                "2",
            ],
            env=env,
            cwd=OUT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        self.health = HEALTH
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                    s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % HEALTH.encode())
                    if s.recv(100).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {OUT / 'web-server.log'}")
            time.sleep(0.1)
        time.sleep(1.0 if workers > 1 else 0.2)  # the other workers finish starting

    def pids(self) -> list[int]:
        """The server's processes (with --workers, the supervisor and its children)."""
        found = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            found += [int(p) for p in children.read_text().split()]
        return found

    def cpu_seconds(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# Measuring


def database_cpu() -> float:
    """CPU seconds so far of the PostgreSQL server's processes (0 without PostgreSQL)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def in_processes(
    pool: ProcessPoolExecutor,
    fn: Callable[..., dict[str, Any]],
    shares: list[tuple[Any, ...]],
    server: Server,
    seconds: float,
) -> dict[str, Any]:
    """Run `fn(*share, start, end)` in the pool's processes, all over the same window."""
    start = time.monotonic() + 3.0  # time to connect, then one second of warm-up
    end = start + seconds
    futures = [pool.submit(fn, *share, start, end) for share in shares]
    time.sleep(max(0.0, start - time.monotonic()))
    server_cpu, db_cpu, machine = server.cpu_seconds(), database_cpu(), machine_cpu()
    time.sleep(max(0.0, end - time.monotonic()))
    server_cpu = server.cpu_seconds() - server_cpu
    db_cpu = database_cpu() - db_cpu
    busy, total = (a - b for a, b in zip(machine_cpu(), machine, strict=True))
    results = [f.result() for f in futures]
    merged: dict[str, Any] = {
        "seconds": seconds,
        "server_cpu": server_cpu / seconds,
        "db_cpu": db_cpu / seconds,
        "machine_busy": busy / total if total else float("nan"),
        "client_cpu": sum(r["cpu_s"] for r in results) / seconds,
        "errors": {},
    }
    for r in results:
        for key, value in r.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            elif key in ("errors", "missed"):
                for k, n in value.items():
                    merged.setdefault(key, {})[k] = merged.get(key, {}).get(k, 0) + n
            elif key != "cpu_s":
                merged[key] = value
    return merged


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts) if items[i::parts]]


def wrk_health(port: int, path: str, clients: int, seconds: float) -> dict[str, float] | None:
    """The bare endpoint through wrk (C), when installed: a check that the Python client is
    not what limits the baseline."""
    if shutil.which("wrk") is None:
        return None
    done = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{clients}",
            f"-d{int(seconds)}s",
            "--latency",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            figures["per_s"] = float(parts[1])
        elif parts and parts[0] in ("50%", "99%"):
            figures[f"p{parts[0][:-1]}_ms"] = _ms(parts[1])
    return figures


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


# The run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: a fresh SQLite file in bench/out")
    parser.add_argument("--workers", type=int, default=1, help="server processes (PostgreSQL)")
    parser.add_argument("--clients", default="50,200", help="concurrent clients, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="per measured phase")
    parser.add_argument("--displays", type=int, default=500, help="rooms with an SSE display")
    parser.add_argument(
        "--drivers",
        default="5,50",
        help="clients stepping out and back while the displays watch, comma-separated",
    )
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk cross-check")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    levels = [int(c) for c in args.clients.split(",") if c]

    url = args.database_url
    if url is None:
        if args.workers != 1:
            parser.error("SQLite serves from one process: --workers 1 (or use PostgreSQL)")
        db_file = OUT / "web.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{db_file}"
    engine = "postgresql" if url.startswith("postgres") else "sqlite"

    started = time.monotonic()
    clients = populate(url, max([*levels, args.displays]))
    print(
        f"setup: {len(clients)} therapists, rooms and sessions in "
        f"{time.monotonic() - started:.1f} s",
        flush=True,
    )

    results: dict[str, Any] = {
        "engine": engine,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "levels": [],
    }
    server = Server(url, args.workers)
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(args.processes, mp_context=context) as pool:
            for n in levels:
                shares = [
                    (server.port, server.health, len(part))
                    for part in split(list(range(n)), args.processes)
                ]
                health = in_processes(pool, web_client.health, shares, server, args.seconds)
                mine = clients[:n]
                shares = [(server.port, part) for part in split(mine, args.processes)]
                cycles = in_processes(pool, web_client.cycles, shares, server, args.seconds)
                wrk = (
                    None if args.no_wrk else wrk_health(server.port, server.health, n, args.seconds)
                )
                level = summarize_level(n, health, cycles, wrk)
                results["levels"].append(level)
                print(orjson.dumps(level).decode(), flush=True)
            results["displays"] = []
            for drivers in [int(d) for d in args.drivers.split(",") if d] if args.displays else []:
                rooms = clients[: args.displays]
                # One process holds every display (the events it times must share its clock).
                shares = [(server.port, rooms, drivers)]
                shown = in_processes(pool, web_client.displays, shares, server, args.seconds)
                figures = summarize_displays(args.displays, drivers, shown)
                results["displays"].append(figures)
                print(orjson.dumps(figures).decode(), flush=True)
    finally:
        server.stop()
    results["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    name = f"web-results-{engine}-{args.workers}w.json"
    (OUT / name).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print_table(results)


def summarize_level(
    n: int, health: dict[str, Any], cycles: dict[str, Any], wrk: dict[str, float] | None
) -> dict[str, Any]:
    h = health.get("latencies", [])
    c = cycles.get("latencies", [])
    r = cycles.get("requests", [])
    health_per_s = len(h) / health["seconds"]
    cycles_per_s = len(c) / cycles["seconds"]
    return {
        "clients": n,
        "healthz_per_s": round(health_per_s),
        "healthz_p50_ms": round(percentile(h, 50) * 1000, 2),
        "healthz_p99_ms": round(percentile(h, 99) * 1000, 2),
        "healthz_server_cpu": round(health["server_cpu"], 2),
        "healthz_client_cpu": round(health["client_cpu"], 2),
        "healthz_machine_busy": round(health["machine_busy"], 2),
        "cycles_per_s": round(cycles_per_s, 1),
        "cycle_p50_ms": round(percentile(c, 50) * 1000, 1),
        "cycle_p99_ms": round(percentile(c, 99) * 1000, 1),
        "request_p50_ms": round(percentile(r, 50) * 1000, 1),
        "request_p99_ms": round(percentile(r, 99) * 1000, 1),
        "cycles_server_cpu": round(cycles["server_cpu"], 2),
        "cycles_db_cpu": round(cycles["db_cpu"], 2),
        "cycles_client_cpu": round(cycles["client_cpu"], 2),
        "cycles_machine_busy": round(cycles["machine_busy"], 2),
        "server_ms_per_request": round(cycles["server_cpu"] / max(1, 2 * cycles_per_s) * 1000, 2),
        "requests_ratio": round(health_per_s / (2 * cycles_per_s), 1) if cycles_per_s else None,
        "errors": {**health["errors"], **cycles["errors"]},
        "wrk_healthz": wrk,
    }


def summarize_displays(displays: int, drivers: int, shown: dict[str, Any]) -> dict[str, Any]:
    away, back = shown.get("away", []), shown.get("in_session", [])
    both = away + back
    after = shown.get("after_answer", [])
    return {
        "displays": displays,
        "drivers": drivers,
        "connect_s": round(shown.get("connect_s", 0.0), 2),
        "exits_timed": len(away),
        "returns_timed": len(back),
        "exit_to_display_p50_ms": round(percentile(away, 50) * 1000, 1),
        "exit_to_display_p99_ms": round(percentile(away, 99) * 1000, 1),
        "return_to_display_p50_ms": round(percentile(back, 50) * 1000, 1),
        "return_to_display_p99_ms": round(percentile(back, 99) * 1000, 1),
        "all_p50_ms": round(percentile(both, 50) * 1000, 1),
        "all_p99_ms": round(percentile(both, 99) * 1000, 1),
        "max_ms": round(max(both, default=float("nan")) * 1000, 1),
        "after_answer_p50_ms": round(percentile(after, 50) * 1000, 1),
        "after_answer_p99_ms": round(percentile(after, 99) * 1000, 1),
        "missed": shown.get("missed", {}),
        "errors": shown.get("errors", {}),
        "server_cpu": round(shown["server_cpu"], 2),
        "db_cpu": round(shown["db_cpu"], 2),
        "machine_busy": round(shown["machine_busy"], 2),
    }


def print_table(results: dict[str, Any]) -> None:
    print()
    print(
        f"engine {results['engine']}, {results['workers']} server process(es), "
        f"{results['cpus']} CPUs, load average before {' '.join(results['loadavg_before'])}"
    )
    rows = [
        (
            "clients",
            "healthz/s",
            "p50/p99 ms",
            "cycles/s",
            "cycle p50/p99 ms",
            "req p50/p99 ms",
            "healthz/request ratio",
            "CPU: server+db+client",
            "errors",
        ),
    ]
    for lv in results["levels"]:
        rows.append(
            (
                str(lv["clients"]),
                f"{lv['healthz_per_s']:,}",
                f"{lv['healthz_p50_ms']}/{lv['healthz_p99_ms']}",
                f"{lv['cycles_per_s']:,}",
                f"{lv['cycle_p50_ms']}/{lv['cycle_p99_ms']}",
                f"{lv['request_p50_ms']}/{lv['request_p99_ms']}",
                f"{lv['requests_ratio']}x",
                f"{lv['cycles_server_cpu']:.2f}+{lv['cycles_db_cpu']:.2f}"
                f"+{lv['cycles_client_cpu']:.2f}",
                str(sum(lv["errors"].values())),
            )
        )
    _table(rows)
    for lv in results["levels"]:
        if lv["wrk_healthz"]:
            w = lv["wrk_healthz"]
            print(
                f"wrk cross-check, /healthz at {lv['clients']} connections: "
                f"{w.get('per_s', 0):,.0f}/s, p50 {w.get('p50_ms')} ms, p99 {w.get('p99_ms')} ms"
            )
    if results.get("displays"):
        print()
        head = (
            "displays",
            "drivers",
            "exit→away p50/p99 ms",
            "return→in_session p50/p99 ms",
            "all p50/p99 ms",
            "max ms",
            "answer→event p50/p99 ms",
            "timed",
            "missed",
        )
        rows = [head]
        for d in results["displays"]:
            rows.append(
                (
                    str(d["displays"]),
                    str(d["drivers"]),
                    f"{d['exit_to_display_p50_ms']}/{d['exit_to_display_p99_ms']}",
                    f"{d['return_to_display_p50_ms']}/{d['return_to_display_p99_ms']}",
                    f"{d['all_p50_ms']}/{d['all_p99_ms']}",
                    str(d["max_ms"]),
                    f"{d['after_answer_p50_ms']}/{d['after_answer_p99_ms']}",
                    str(d["exits_timed"] + d["returns_timed"]),
                    str(sum(d["missed"].values())),
                )
            )
        _table(rows)


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
