"""The app with the changes the benchmark recommends, applied as patches, so that their effect
can be measured before they are made for real (see "Where the time goes" in README.md):

    python -m bench.web_load --tuning all            # or a comma-separated list of:

- `read-auth`: the token lookups (`user_of_api_token`, `room_of_token`) in a read-only unit
  of work. Today they open a writing one: BEGIN IMMEDIATE on SQLite, the ledger's advisory
  lock on PostgreSQL, so every request's authentication queues behind every write.
- `no-writer`: no background `Writer` thread for the live workflow's writes (a thread
  started, handed one or two rows, and joined, per request: built for imports).
- `write-queue`: on SQLite, a process-wide lock taken before BEGIN IMMEDIATE, so that the
  server's threads queue for the write lock in Python (woken at once) instead of in SQLite's
  busy handler (which sleeps 1, 2, 5, 10 ... 100 ms between tries).
- `max-pk`: the projector's three `SELECT max(pk)` in one plain statement.
- `token-cache`: API and room tokens' lookups remembered for 5 s per process (a revoked
  token keeps working for up to that long on a process that saw it just before).
- `threads`: the thread pool that runs the sync endpoints cut from AnyIO's 40 threads to
  STEPOUT_BENCH_THREADS (default 8): writes are serialised anyway, and 40 threads queueing
  for them (and for the GIL) only lengthen each one's turn.

Used as the server's factory: `uvicorn bench.web_tuned:app_from_env --factory`, with the
patches named in STEPOUT_BENCH_TUNING.
"""

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI

TUNINGS: Final = ("read-auth", "no-writer", "write-queue", "max-pk", "token-cache", "threads")
TOKEN_TTL_S: Final = 5.0


def apply(names: list[str]) -> None:
    for name in names:
        if name not in TUNINGS:
            raise ValueError(f"unknown tuning {name!r}: expected one of {', '.join(TUNINGS)}")
        if name != "threads":
            globals()["_" + name.replace("-", "_")]()


def _threads(app: FastAPI, count: int) -> None:
    import anyio.to_thread

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = count
        async with inner(app) as state:
            yield state

    app.router.lifespan_context = lifespan


def _read_auth() -> None:
    from stepout.domain.accounts import Room, User
    from stepout.services import credentials
    from stepout.services.accounts import AccountService

    def user_of_api_token(self: Any, token: str) -> User | None:
        with self._uow(read_only=True) as uow:
            found: User | None = uow.accounts.user_of_api_token(credentials.token_hash(token))
            return found

    def room_of_token(self: Any, token: str) -> Room | None:
        with self._uow(read_only=True) as uow:
            found: Room | None = uow.accounts.room_of_token(credentials.token_hash(token))
            return found

    AccountService.user_of_api_token = user_of_api_token
    AccountService.room_of_token = room_of_token


def _token_cache() -> None:
    import time

    from stepout.services.accounts import AccountService

    def cached(lookup: Any) -> Any:
        seen: dict[str, tuple[float, Any]] = {}

        def remembered(self: Any, token: str) -> Any:
            now = time.monotonic()
            hit = seen.get(token)
            if hit is not None and hit[0] > now:
                return hit[1]
            found = lookup(self, token)
            if len(seen) > 10_000:
                seen.clear()
            seen[token] = (now + TOKEN_TTL_S, found)
            return found

        return remembered

    AccountService.user_of_api_token = cached(AccountService.user_of_api_token)
    AccountService.room_of_token = cached(AccountService.room_of_token)


def _no_writer() -> None:
    from stepout.adapters.db import uow

    uow.Writer = lambda conn: None


def _write_queue() -> None:
    from stepout.adapters.db.uow import SqlUnitOfWork

    lock = threading.Lock()
    enter, exit_ = SqlUnitOfWork.__enter__, SqlUnitOfWork.__exit__

    def queued_enter(self: Any) -> Any:
        queued = not self._read_only and self._engine.dialect.name == "sqlite"
        if queued:
            lock.acquire()
        self._queued = queued
        try:
            return enter(self)
        except BaseException:
            if queued:
                lock.release()
            raise

    def queued_exit(self: Any, *exc: Any) -> None:
        try:
            exit_(self, *exc)
        finally:
            if getattr(self, "_queued", False):
                self._queued = False
                lock.release()

    SqlUnitOfWork.__enter__ = queued_enter
    SqlUnitOfWork.__exit__ = queued_exit


def _max_pk() -> None:
    from stepout.adapters.db import projection

    def read_next(self: Any) -> dict[str, int]:
        self._sync()
        row = self._conn.exec_driver_sql(
            "SELECT (SELECT max(pk) FROM sessions), (SELECT max(pk) FROM exits),"
            " (SELECT max(pk) FROM concerns)"
        ).one()
        return {e: (pk or 0) + 1 for e, pk in zip(("session", "exit", "concern"), row, strict=True)}

    projection.Projector._read_next = read_next


def app_from_env() -> FastAPI:
    names = [n for n in os.environ.get("STEPOUT_BENCH_TUNING", "").split(",") if n]
    names = list(TUNINGS) if names == ["all"] else names
    apply(names)
    from stepout.web.app import app_from_env as plain

    app = plain()
    if "threads" in names:
        _threads(app, int(os.environ.get("STEPOUT_BENCH_THREADS", "8")))
    return app
