"""Many rows at once, the fast way for each engine.

SQLite: the sqlite3 cursor's `executemany` with tuples. PostgreSQL: COPY for larger batches,
psycopg's pipelined `executemany` for small ones. Both run on the unit of work's own
connection, inside its transaction.
"""

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Connection, exc

COPY_FROM: Final = 64  # rows from which COPY beats executemany on PostgreSQL

Row = tuple[Any, ...]


def _marks(conn: Connection, n: int) -> str:
    return ", ".join(["?" if conn.dialect.paramstyle == "qmark" else "%s"] * n)


def insert_rows(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {table} ({names}) VALUES ({_marks(conn, len(columns))})"
    _executemany(conn, sql, rows)


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
