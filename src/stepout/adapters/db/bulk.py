"""Many rows at once, the fast way for each engine.

SQLite: the sqlite3 cursor's `executemany` with tuples, or, handed to a `Writer`, multi-row
INSERTs run by a background thread. PostgreSQL: COPY for larger batches, psycopg's pipelined
`executemany` for small ones. All run on the unit of work's own connection, inside its
transaction.
"""

import queue
import sys
import threading
from collections.abc import Sequence
from itertools import chain
from typing import Any, Final

from sqlalchemy import Connection, exc

COPY_FROM: Final = 64  # rows from which COPY beats executemany on PostgreSQL
MAX_PARAMS: Final = 32_766  # SQLite's default SQLITE_MAX_VARIABLE_NUMBER (3.32 and later)
MAX_ROWS: Final = 2_048  # rows per multi-row INSERT (a power of two: see `_sizes`)
SWITCH_INTERVAL: Final = 0.001  # seconds; the GIL's hand-over while a Writer works

Row = tuple[Any, ...]


def _marks(conn: Connection, n: int) -> str:
    return ", ".join(["?" if conn.dialect.paramstyle == "qmark" else "%s"] * n)


class Writer:
    """Runs a SQLite connection's bulk writes on one background thread, in submission order.

    The sqlite3 module releases the GIL while SQLite steps a statement, so the caller's Python
    (validating and chaining the next chunk) overlaps the inserts of this one. While a write is
    pending nothing else may use the connection: call `drain()` first, which waits for every
    submitted write and raises the first one's error (the writes after a failed one are
    skipped). `close()` waits for the thread to end; it never leaves one running.

    Rows go in multi-row INSERTs of power-of-two sizes (a few cached statements, a few GIL
    hand-overs per chunk instead of one per row); the GIL's switch interval is shortened while
    the thread lives, so that it gets the GIL back quickly after each statement."""

    def __init__(self, conn: Connection) -> None:
        driver = conn.connection.driver_connection
        assert driver is not None
        self._driver: Any = driver
        self._jobs: queue.Queue[tuple[str, list[Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _start(self) -> None:
        if self._thread is None:
            _fast_switching(True)
            self._thread = threading.Thread(target=self._run, name="stepout-writer", daemon=True)
            self._thread.start()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement on the thread, after the writes submitted before it (the
        dashboard's rollup: `stepout.adapters.db.rollup`)."""
        self._start()
        self._jobs.put((sql, list(params)))

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        if not rows:
            return
        self._start()
        names, width = ", ".join(columns), len(columns)
        one = "(" + ", ".join("?" * width) + ")"
        start = 0
        for size in _sizes(len(rows), min(MAX_ROWS, MAX_PARAMS // width)):
            part = rows[start : start + size]
            start += size
            sql = f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * size)}"
            self._jobs.put((sql, list(chain.from_iterable(part))))

    def drain(self) -> None:
        """Wait for every submitted write; raise the first error since the last drain."""
        if self._thread is not None:
            self._jobs.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def discard(self) -> None:
        """Wait for every submitted write, dropping any error (before a rollback)."""
        if self._thread is not None:
            self._jobs.join()
        self._error = None

    def close(self) -> None:
        """Wait for the thread to end (pending writes finish or are skipped, errors dropped)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._jobs.put(None)
        thread.join()
        self._error = None
        _fast_switching(False)

    def _run(self) -> None:
        jobs, cursor = self._jobs, self._driver.cursor()
        try:
            while True:
                job = jobs.get()
                try:
                    if job is None:
                        return
                    if self._error is None:
                        cursor.execute(*job)
                except BaseException as error:  # handed to the caller at its next drain
                    self._error = error
                finally:
                    jobs.task_done()
        finally:
            cursor.close()


_switching = {"writers": 0, "interval": 0.0}  # live Writer threads, the interval before
_switching_lock = threading.Lock()


def _fast_switching(on: bool) -> None:
    """Shorten the GIL's switch interval while any Writer thread lives; restore it after."""
    with _switching_lock:
        if on:
            if _switching["writers"] == 0:
                _switching["interval"] = sys.getswitchinterval()
                sys.setswitchinterval(min(_switching["interval"], SWITCH_INTERVAL))
            _switching["writers"] += 1
        else:
            _switching["writers"] -= 1
            if _switching["writers"] == 0:
                sys.setswitchinterval(_switching["interval"])


def _sizes(n: int, most: int) -> list[int]:
    """`n` as a sum of powers of two, none above `most` (the largest first)."""
    top = 1 << (most.bit_length() - 1)
    sizes = [top] * (n // top)
    rest = n % top
    while rest:
        top >>= 1
        if rest >= top:
            sizes.append(top)
            rest -= top
    return sizes


def insert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Row],
    writer: Writer | None = None,
) -> None:
    if not rows:
        return
    if writer is not None:
        writer.insert(table, columns, rows)
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_FROM and _may_copy(conn, table):
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {table} ({names}) VALUES ({_marks(conn, len(columns))})"
    _executemany(conn, sql, rows)


def _may_copy(conn: Connection, table: str) -> bool:
    """Whether COPY may fill `table`: PostgreSQL refuses COPY FROM into a table under row-level
    security (migration 0007) unless the role passes every policy (a superuser, BYPASSRLS).
    Asked once per table and database connection."""
    known: dict[str, bool] = conn.info.setdefault("stepout_may_copy", {})
    allowed = known.get(table)
    if allowed is None:
        allowed = bool(
            conn.exec_driver_sql(
                "SELECT NOT c.relrowsecurity OR r.rolsuper OR r.rolbypassrls "
                "FROM pg_class c, pg_roles r "
                "WHERE c.oid = to_regclass(%(table)s) AND r.rolname = current_user",
                {"table": table},
            ).scalar()
        )
        known[table] = allowed
    return allowed


def update_rows(
    conn: Connection, table: str, columns: Sequence[str], key: str, rows: Sequence[Row]
) -> None:
    """UPDATE `columns` by `key`; each row holds the columns' values, then the key's."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sets = ", ".join(f"{c} = {mark}" for c in columns)
    _executemany(conn, f"UPDATE {table} SET {sets} WHERE {key} = {mark}", rows)


def _executemany(conn: Connection, sql: str, rows: Sequence[Row]) -> None:
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def integrity_errors(conn: Connection) -> tuple[type[BaseException], ...]:
    """The exceptions a constraint violation raises, wrapped by SQLAlchemy or not."""
    dbapi = conn.dialect.dbapi
    raw: tuple[type[BaseException], ...] = () if dbapi is None else (dbapi.IntegrityError,)
    return (exc.IntegrityError, *raw)
