"""SQL storage: the ledger and its projections on SQLite (default) or PostgreSQL.

`Database` is the façade the CLI and the services use: open a URL, get units of work,
migrate, rebuild the projections from the ledger, verify the ledger's chain.
"""

from typing import Final, Self

from sqlalchemy import Engine, text

from stepout.adapters.db import ledger, migrate
from stepout.adapters.db.engine import create_engine_for, write_connection
from stepout.adapters.db.migrate import SchemaNotCurrent
from stepout.adapters.db.projection import Projector
from stepout.adapters.db.tables import PROJECTIONS
from stepout.adapters.db.uow import SqlUnitOfWork
from stepout.crypto.keys import Keys
from stepout.domain.chain import VerifyResult
from stepout.domain.events import Event

__all__ = ["Database", "SchemaNotCurrent", "SqlUnitOfWork", "VerifyResult"]

REPLAY_CHUNK: Final = 10_000


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

    def uow(self, *, read_only: bool = False) -> SqlUnitOfWork:
        """A unit of work; `read_only=True` for reports (no write lock, one snapshot)."""
        return SqlUnitOfWork(self.engine, self.keys, read_only=read_only)

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

    def verify_ledger(self) -> VerifyResult:
        """Walk the hash chain from the first entry; the result names the first break."""
        with self.engine.connect() as conn:
            result = ledger.verify(conn, self.keys.chain_key)
            conn.rollback()
        return result

    def dispose(self) -> None:
        self.engine.dispose()
