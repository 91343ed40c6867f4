"""Engines from URLs: SQLite (the embedded default) and PostgreSQL through psycopg 3.

SQLite connections run in WAL mode with `synchronous=FULL`, foreign keys on and a busy
timeout. SQLAlchemy, not the sqlite3 module, emits BEGIN: a connection marked for writing
(`write_connection`) starts its transactions with BEGIN IMMEDIATE, so that writers queue for
the lock up front instead of failing to upgrade a read lock. On PostgreSQL a writing
transaction first takes a transaction-level advisory lock, the same queue. Either way, write
transactions are serialised, and the ledger's head read inside one cannot go stale.
"""

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from stepout.adapters.db import tenancy
from stepout.files import create_private

WRITE = "stepout_write"  # execution option that marks a connection's transactions as writes
LEDGER_LOCK = 0x5374_6570_4F75_74  # pg_advisory_xact_lock key ("StepOut"), per database
BUSY_TIMEOUT_MS = 30_000
# SQLite page cache (KiB) by kind of transaction: an import touches every page of indexes of
# millions of rows, and a small cache makes each insert reread pages; readers stream and
# need little.
WRITE_CACHE_KIB = 512 * 1024
READ_CACHE_KIB = 64 * 1024


def normalize_url(url: str | URL) -> URL:
    """`postgresql://` means psycopg 3 here, not SQLAlchemy's default psycopg2."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine_for(url: str | URL, **options: Any) -> Engine:
    """An engine for a `sqlite:///path` or `postgresql+psycopg://…` URL."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, **options)
    if backend == "postgresql":
        engine = create_engine(parsed, **options)
        event.listen(engine, "begin", _pg_begin)
        return engine
    raise ValueError(f"unsupported database URL {parsed.drivername}://…: use sqlite or postgresql")


_WRITE_QUEUES: "dict[str, threading.RLock]" = {}
_QUEUES_LOCK = threading.Lock()


def write_queue(engine: Engine) -> "threading.RLock | None":
    """On SQLite, the lock this process's writing units of work take before BEGIN IMMEDIATE,
    one per database file: threads then wait their turn in Python, woken the moment the
    writer before them is done, instead of in SQLite's busy handler, which sleeps up to 100 ms
    between tries. Re-entrant, so that a thread's nested writer still meets SQLite's own lock
    (and its busy timeout) as before. Other processes still queue in SQLite. None on PostgreSQL
    (its advisory lock queues writers fairly)."""
    if engine.dialect.name != "sqlite":
        return None
    key = str(engine.url.database)
    with _QUEUES_LOCK:
        return _WRITE_QUEUES.setdefault(key, threading.RLock())


def write_connection(engine: Engine) -> Connection:
    """A new connection whose transactions are writes (BEGIN IMMEDIATE / advisory lock)."""
    return engine.connect().execution_options(**{WRITE: True})


def _sqlite_engine(url: URL, **options: Any) -> Engine:
    memory = is_memory(url)
    # A writing unit of work's `Writer` thread uses the connection (never at the same time).
    options["connect_args"] = {"check_same_thread": False, **options.get("connect_args", {})}
    if memory:
        options.setdefault("poolclass", StaticPool)
    else:
        # Enough pooled connections for the web app's threads and display streams, so that
        # none is opened (and set up) per request.
        options.setdefault("pool_size", 20)
        options.setdefault("max_overflow", 20)
        if url.database:
            # Owner only: SQLite gives its -wal and -shm files the database file's mode.
            path = Path(url.database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            create_private(path)
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (_sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA cache_size = -524288")  # 64 MiB: imports touch big indexes
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(WRITE, False)
    cache = WRITE_CACHE_KIB if write else READ_CACHE_KIB
    info = conn.connection.info  # lives as long as the DBAPI connection
    if info.get("cache_kib") != cache:
        conn.exec_driver_sql(f"PRAGMA cache_size = -{cache}")
        info["cache_kib"] = cache
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _pg_begin(conn: Connection) -> None:
    # One round trip: the transaction's practice for row-level security (migration 0007,
    # `tenancy`) and, for a write, the ledger's lock.
    statement = f"SELECT set_config('{tenancy.SETTING}', %(scope)s, true)"
    if conn.get_execution_options().get(WRITE, False):
        statement += f", pg_advisory_xact_lock({LEDGER_LOCK})"
    conn.exec_driver_sql(statement, {"scope": tenancy.setting_value(tenancy.bound(conn))})
