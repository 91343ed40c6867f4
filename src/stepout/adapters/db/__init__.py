"""SQL storage: the ledger and its projections on SQLite (default) or PostgreSQL.

`Database` is the façade the CLI and the services use: open a URL, get units of work,
migrate, rebuild the projections from the ledger, verify the ledger's and the audit trail's
chains.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Self

from sqlalchemy import Connection, Engine, select, text

from stepout.adapters.db import audit, findings_store, ledger, migrate, rollup, tenancy
from stepout.adapters.db.engine import create_engine_for, write_connection
from stepout.adapters.db.migrate import SchemaNotCurrent
from stepout.adapters.db.projection import Projector
from stepout.adapters.db.tables import PROJECTIONS, AuditRow, EventRow
from stepout.adapters.db.uow import SqlUnitOfWork
from stepout.crypto.keys import Keys
from stepout.domain.chain import VerifyResult
from stepout.domain.events import Event

__all__ = ["Database", "SchemaNotCurrent", "SqlUnitOfWork", "VerifyResult"]

REPLAY_CHUNK: Final = 10_000
CHAIN_TABLES: Final = {"ledger": EventRow, "audit": AuditRow}
# Each query table, and the ledger kinds that add one row to it.
PROJECTED: Final = {
    "practices": ("practice.created",),
    "sessions": ("session.recorded", "session.started"),
    "exits": ("exit.recorded", "exit.declared"),
    "concerns": ("concern.recorded", "concern.raised"),
    "amendments": ("session.amended", "exit.amended", "concern.amended"),
    "appointments": ("appointment.scheduled",),
}


class Database:
    def __init__(self, engine: Engine, keys: Keys) -> None:
        self.engine = engine
        self.keys = keys

    @classmethod
    def open(cls, url: str, *, keys: Keys, migrate: bool = True) -> Self:
        """Connect to `url`, with the keys of the key file. With `migrate`, make sure the
        schema is current: an SQLite file (and its folder) is created or upgraded on the spot;
        a PostgreSQL database that is not at head raises `SchemaNotCurrent` (run `stepout
        init`)."""
        db = cls(create_engine_for(url), keys)
        try:
            if migrate:
                db._ensure_schema()
        except BaseException:
            db.dispose()
            raise
        return db

    def _ensure_schema(self) -> None:
        if migrate.is_current(self.engine):
            return
        if self.engine.dialect.name == "sqlite":
            self.migrate()
        else:
            migrate.require_current(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def uow(self, *, read_only: bool = False, scope: tenancy.Scope | None = None) -> SqlUnitOfWork:
        """A unit of work; `read_only=True` for reports (no write lock, one snapshot). Its
        practice scope is the context's (`tenancy`) unless `scope` names one."""
        return SqlUnitOfWork(self.engine, self.keys, read_only=read_only, scope=scope)

    def migrate(self) -> str:
        """Upgrade to the head revision; returns it."""
        return migrate.upgrade(self.engine)

    def revision(self) -> str | None:
        return migrate.current(self.engine)

    def rebuild_projections(self) -> int:
        """Empty the projection tables and replay the whole ledger through the projection
        code, in one transaction; returns the number of events replayed."""
        with write_connection(self.engine) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(PROJECTIONS)}"))
            else:
                for table in PROJECTIONS:
                    conn.execute(text(f"DELETE FROM {table}"))
            projector = Projector(conn)
            events: list[Event] = []
            seqs: list[int] = []
            replayed = 0
            for entry in ledger.entries(conn):
                events.append(ledger.event_of(entry))
                seqs.append(entry.seq)
                if len(events) == REPLAY_CHUNK:
                    projector.apply(events, seqs)
                    replayed += len(events)
                    events, seqs = [], []
            projector.apply(events, seqs)
            return replayed + len(events)

    # Verification (stepout verify, stepout checkpoint): always over every practice.

    def verify_ledger(self) -> VerifyResult:
        """Walk the ledger's hash chain from the first entry; the result names the first
        break."""
        with self._snapshot() as conn:
            return ledger.verify(conn, self.keys.chain_key)

    def verify_audit(self) -> VerifyResult:
        """Walk the audit trail's hash chain from the first entry, as `verify_ledger`."""
        with self._snapshot() as conn:
            return audit.verify(conn, self.keys.chain_key)

    def verify_chains(self) -> dict[str, VerifyResult]:
        """Both chains (`ledger`, `audit`), walked in one snapshot of the database."""
        with self._snapshot() as conn:
            return {
                "ledger": ledger.verify(conn, self.keys.chain_key),
                "audit": audit.verify(conn, self.keys.chain_key),
            }

    def chain_hash_at(self, chain: str, seq: int) -> str | None:
        """The stored hash of entry `seq` of the `ledger` or the `audit` chain."""
        table = CHAIN_TABLES[chain].__table__
        with self._snapshot() as conn:
            found = conn.execute(select(table.c.hash).where(table.c.seq == seq)).scalar()
        return None if found is None else str(found)

    def projection_counts(self) -> dict[str, tuple[int, int]]:
        """Per query table: (its rows, how many the ledger's entries make), in one snapshot.
        A cheap check that nobody added or removed rows behind the ledger's back."""
        with self._snapshot() as conn:
            kinds = {
                str(kind): int(n)
                for kind, n in conn.execute(text("SELECT kind, COUNT(*) FROM events GROUP BY kind"))
            }
            counts = {
                table: (
                    int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()),
                    sum(kinds.get(kind, 0) for kind in made_by),
                )
                for table, made_by in PROJECTED.items()
            }
            # One review row per finding key that a `finding.*` entry names.
            reviewed = "SELECT COUNT(DISTINCT subject) FROM events WHERE kind LIKE 'finding.%'"
            counts["finding_reviews"] = (
                int(conn.execute(text("SELECT COUNT(*) FROM finding_reviews")).scalar_one()),
                int(conn.execute(text(reviewed)).scalar_one()),
            )
            # Not projections, checked alike (`services.checkpoint.DERIVED`): the findings
            # store's rows against what its runs say they wrote.
            counts["findings"] = findings_store.row_counts(conn)
            return counts

    def derived_problems(self) -> list[str]:
        """Where the dashboard's rollup differs from the base tables it sums (a replay of the
        sums, not a count: a value changed behind the projection's back is found)."""
        with self._snapshot() as conn:
            return rollup.rollup_mismatches(conn)

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read-only transaction over every practice that sees one state of the database."""
        with tenancy.scope(tenancy.ALL), self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            conn.begin()
            try:
                yield conn
            finally:
                conn.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
