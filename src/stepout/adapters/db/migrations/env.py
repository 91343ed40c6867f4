"""Alembic's environment: Stepout's metadata, on the connection `migrate` hands over.

`stepout.adapters.db.migrate` builds the Alembic configuration in code and passes an open
connection in `config.attributes["connection"]`; run on its own (`alembic -x url=…`), this
file opens one from the URL instead.
"""

from alembic import context
from sqlalchemy import Connection

from stepout.adapters.db.engine import create_engine_for, write_connection
from stepout.adapters.db.tables import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("no database: pass -x url=sqlite:///path.db or set sqlalchemy.url")
    engine = create_engine_for(url)
    try:
        with write_connection(engine) as conn, conn.begin():
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
