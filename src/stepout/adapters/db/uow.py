"""The UnitOfWork port on SQL: one connection, one transaction.

A writing unit of work starts its transaction at once, and with it the write queue (BEGIN
IMMEDIATE on SQLite, the ledger's advisory lock on PostgreSQL): what it reads before it
appends cannot change under it. A reading one (`read_only=True`) takes no lock and sees one
consistent snapshot (SQLite's deferred transaction in WAL mode; REPEATABLE READ on
PostgreSQL). Leaving the `with` block without `commit()` rolls back.

A writing unit of work on SQLite runs the ledger's inserts on a `Writer` thread. Nothing else
touches the connection while a write is pending: reads through `records`, the `connection`
property, the next append, `commit` and `rollback` settle the ledger first (and raise a
failed write's error there). The thread ends when the unit of work exits, however it exits.
"""

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from stepout.adapters.db import tenancy
from stepout.adapters.db.accounts import SqlAccounts
from stepout.adapters.db.audit import SqlAudit
from stepout.adapters.db.bulk import Writer
from stepout.adapters.db.engine import WRITE, write_queue
from stepout.adapters.db.ledger import SqlLedger
from stepout.adapters.db.queries import SqlRecords
from stepout.adapters.db.reviews import SqlReviews
from stepout.crypto.keys import Keys


class SqlUnitOfWork:
    records: SqlRecords
    ledger: SqlLedger
    accounts: SqlAccounts
    audit: SqlAudit  # the audit trail, appended in this transaction (writing units only)
    reviews: SqlReviews  # findings' reviews (`stepout.services.reviews`)

    def __init__(
        self,
        engine: Engine,
        keys: Keys,
        *,
        read_only: bool = False,
        scope: tenancy.Scope | None = None,  # default: the context's (tenancy.current)
    ) -> None:
        self._scope = scope
        self._engine = engine
        self._keys = keys
        self._read_only = read_only
        self._conn: Connection | None = None
        self._writer: Writer | None = None

    @property
    def connection(self) -> Connection:
        """The unit of work's connection, for queries the ports do not cover."""
        if self._conn is None:
            raise RuntimeError("the unit of work is not open: use it in a `with` block")
        self.ledger.settle()
        return self._conn

    def __enter__(self) -> Self:
        queue = None if self._read_only else write_queue(self._engine)
        if queue is not None:
            queue.acquire()
        try:
            return self._open()
        except BaseException:
            if queue is not None:
                queue.release()
            raise

    def _open(self) -> Self:
        # Sealed tenants: no practice scope, no unit of work. The scope is the connection's
        # for every transaction it begins (PostgreSQL's row-level security: engine._pg_begin).
        scope = tenancy.require() if self._scope is None else self._scope
        conn = self._engine.connect()
        try:
            tenancy.bind(conn, scope)
            if not self._read_only:
                conn.execution_options(**{WRITE: True})
            elif conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            conn.begin()
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        if not self._read_only and conn.dialect.name == "sqlite":
            self._writer = Writer(conn)
        self.ledger = SqlLedger(conn, self._keys, writable=not self._read_only, writer=self._writer)
        # Only a writer leaves writes pending: then every read waits for them first.
        settle = self.ledger.settle if self._writer else None
        self.records = SqlRecords(conn, self.ledger.crypt, settle)
        self.accounts = SqlAccounts(conn, settle)
        self.reviews = SqlReviews(conn, self.ledger.crypt, settle)
        self.audit = SqlAudit(conn, self._keys, writable=not self._read_only, settle=settle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        writer, self._writer = self._writer, None
        if conn is None:
            return
        try:
            if writer is not None:
                writer.close()  # the thread ends first: nothing else may touch the connection
            if conn.in_transaction():
                conn.rollback()
        finally:
            self.ledger.reset()
            self.audit.reset()
            conn.close()
            if not self._read_only and (queue := write_queue(self._engine)) is not None:
                queue.release()

    def commit(self) -> None:
        conn = self.connection  # settles: raises if a pending write failed
        self.audit.flush()  # records staged for the commit, in its transaction
        conn.commit()
        self.ledger.reset()

    def rollback(self) -> None:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open: use it in a `with` block")
        self.ledger.discard()
        self._conn.rollback()
        self.ledger.reset()
        self.audit.reset()
