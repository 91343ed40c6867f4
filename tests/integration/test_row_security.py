"""The second wall between practices, on PostgreSQL: row-level security with FORCE (migration
0007), scoped by the transaction's `stepout.practice` setting.

Superusers pass every policy, and this machine's PostgreSQL users are superusers: so these
tests make a role that is not (`stepout_rls_probe`), grant it the tables of a freshly migrated
database and connect as it. Scoped to practice A it sees only A's rows in every walled table;
with no scope it sees none; a row of B written under A's scope is refused; `*` sees them all.
And the application's own unit of work, connected as that role, finds nothing of B even when
its query names B.
"""

import contextlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import inspect, text

from stepout.adapters.db import Database, tenancy
from stepout.adapters.db.tables import Base
from stepout.crypto.keys import Keys
from stepout.domain.commands import (
    Amend,
    DeclareExit,
    EndSession,
    RaiseConcern,
    Return,
    StartSession,
)
from stepout.domain.instants import MICROS_PER_MINUTE, parse_instant
from stepout.services.accounts import AccountService
from stepout.services.workflow import Workflow
from tests.conftest import sqlalchemy_url
from tests.web.attack_support import grant_probe

A, B = "practice-a", "practice-b"
UNWALLED: Final = {"events", "audit_log", "login_failures", "alembic_version"}

# How each walled table's rows belong to a practice, as the superuser reads it: a query of
# (row key, practice).
_USER_LINKED: Final = (
    "api_tokens",
    "web_sessions",
    "mfa_factors",
    "recovery_codes",
    "pending_sign_ins",
)


def _owner_query(table: str, key: str) -> str:
    if table == "practices":
        return "SELECT id, id FROM practices"
    if table in _USER_LINKED:
        return f'SELECT t.{key}::text, u.practice FROM {table} t JOIN users u ON u.id = t."user"'
    if table == "amendments":
        return (
            "SELECT a.seq::text, coalesce(s.practice, x.practice, c.practice) FROM amendments a "
            "LEFT JOIN sessions s ON a.entity = 'session' AND s.id = a.subject "
            "LEFT JOIN exits x ON a.entity = 'exit' AND x.id = a.subject "
            "LEFT JOIN concerns c ON a.entity = 'concern' AND c.id = a.subject"
        )
    return f"SELECT {key}::text, practice FROM {table}"


class Clock:
    def __init__(self) -> None:
        self.now = parse_instant("2026-11-03T09:00:00+00:00")

    def __call__(self) -> int:
        self.now += MICROS_PER_MINUTE
        return self.now


def _records(db: Database, practice: str) -> None:
    """A practice with a user, a room and its token, an API token, and a session with an exit,
    a concern and an amendment (everything through the services, as the operator: ALL)."""
    clock = Clock()
    accounts = AccountService(db.uow, clock)
    accounts.add_practice(practice, f"Synthetic {practice}")
    accounts.add_user(f"{practice}-ther", practice, "therapist", None)
    accounts.add_room("room-1", practice, "Room one")
    accounts.create_room_token("room-1", practice)
    accounts.create_api_token(f"{practice}-ther")
    flow = Workflow(db.uow, clock)
    me = f"{practice}-ther"
    s = flow.start_session(
        StartSession(practice=practice, actor=me, therapist=me, client="c-0001", room="room-1",
                     modality="in_person", billed_codes=("90834",))
    )  # fmt: skip
    x = flow.declare_exit(
        DeclareExit(practice=practice, actor=me, session=s.id, reason="technical",
                    client_informed="before_leaving", explanation="Back in two minutes.")
    )  # fmt: skip
    flow.return_(Return(practice=practice, actor=me, exit=x.id, checked_in=True))
    flow.end_session(EndSession(practice=practice, actor=me, session=s.id))
    flow.raise_concern(RaiseConcern(practice=practice, session=s.id, text="A synthetic note."))
    flow.amend(
        Amend(practice=practice, actor=me, kind="exit", id=x.id,
              changes={"reason_note": "Synthetic amendment."}, note="Synthetic reason.")
    )  # fmt: skip


def _fill_generic(db: Database, practice: str) -> None:
    """One row in each walled table the services above did not fill (credentials of later
    migrations: second factors, pending sign-ins, waivers, data keys), made from the column
    types alone, so that every walled table has rows of both practices."""
    with db.engine.begin() as conn:
        user = f"{practice}-ther"
        for table in Base.metadata.sorted_tables:
            name = table.name
            if name in UNWALLED or name in _FILLED:
                continue
            if conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() and name != "data_keys":
                owned = conn.execute(text(_owner_query(name, _key(name)))).all()
                if any(p == practice for _, p in owned):
                    continue
            row: dict[str, Any] = {}
            for column in table.columns:
                if column.name == "practice":
                    row[column.name] = practice
                elif column.name == "user":
                    row[column.name] = user
                else:
                    row[column.name] = _value(column, practice)
            if name == "data_keys":
                row["generation"] = 1_000_000
                if conn.execute(
                    text("SELECT 1 FROM data_keys WHERE practice = :p AND generation = :g"),
                    {"p": practice, "g": row["generation"]},
                ).first():
                    continue
            conn.execute(table.insert().values(**row))


_FILLED: Final = {"practices", "sessions", "exits", "concerns", "amendments", "users", "rooms"}


def _value(column: Any, practice: str) -> Any:
    kind = column.type.python_type
    if kind is str:
        return f"{practice}-{secrets.token_hex(6)}"
    if kind is int:
        return 0 if column.nullable else 1
    if kind is bool:
        return False
    if kind is bytes:
        return b"\x00" * 16
    raise AssertionError(f"no synthetic value for {column}")


def _key(table: str) -> str:
    columns = [f'"{c.name}"' for c in Base.metadata.tables[table].primary_key.columns]
    if len(columns) == 1:
        return columns[0]
    return "(" + ", ".join(columns) + ")"


@dataclass
class Walled:
    db: Database  # as the superuser
    probe_url: str  # libpq conninfo of the probe role on the same database
    owners: dict[str, dict[str, str]]  # table -> row key -> practice


@contextmanager
def _walled(url: str, server: str, keys: Keys) -> Iterator[Walled]:
    db = Database.open(url, keys=keys, migrate=False)
    db.migrate()
    try:
        for practice in (A, B):
            _records(db, practice)
        for practice in (A, B):
            _fill_generic(db, practice)
        probe_url = grant_probe(server, url.rsplit("/", 1)[1])
        owners: dict[str, dict[str, str]] = {}
        with db.engine.connect() as conn:
            for table in walled_tables(conn):
                rows = conn.execute(text(_owner_query(table, _key(table)))).all()
                owners[table] = {str(k): p for k, p in rows}
        yield Walled(db, probe_url, owners)
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def walled(postgres_server: str, keys: Keys) -> Iterator[Walled]:
    """Both practices' rows, read (never changed) by the tests that share it."""
    name = f"stepout_t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = sqlalchemy_url(f"{postgres_server.rsplit('/', 1)[0]}/{name}")
        with _walled(url, postgres_server, keys) as found:
            yield found
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def walled_anew(postgres_url: str, postgres_server: str, keys: Keys) -> Iterator[Walled]:
    """As `walled`, for one test that changes it."""
    with _walled(postgres_url, postgres_server, keys) as found:
        yield found


def walled_tables(conn: Any) -> list[str]:
    found = conn.execute(
        text(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relrowsecurity "
            "AND relnamespace = 'public'::regnamespace ORDER BY relname"
        )
    )
    return [r[0] for r in found]


def _as_probe(walled: Walled, scope: str | None) -> psycopg.Connection[Any]:
    conn = psycopg.connect(walled.probe_url)
    if scope is not None:
        conn.execute("SELECT set_config('stepout.practice', %s, false)", [scope])
        conn.commit()  # for the session, past the rollbacks below
    return conn


def _seen(conn: psycopg.Connection[Any], table: str) -> set[str]:
    query = f"SELECT {_key(table)}::text FROM {table}"
    if table == "practices":
        query = "SELECT id FROM practices"
    elif table == "amendments":
        query = "SELECT seq::text FROM amendments"
    elif table in _USER_LINKED:
        query = f"SELECT {_key(table)}::text FROM {table}"
    return {str(r[0]) for r in conn.execute(query)}


@pytest.mark.postgres
def test_every_table_of_a_practice_is_walled_and_forced(walled: Walled) -> None:
    """A table that names a practice or a user has the wall, forced; only the two chains and
    the throttling counts are left open, on purpose (see migration 0007)."""
    with walled.db.engine.connect() as conn:
        flags = {
            name: (rls, force)
            for name, rls, force in conn.execute(
                text(
                    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                    "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
                )
            )
        }
        columns = {table: {c["name"] for c in inspect(conn).get_columns(table)} for table in flags}
    for table, (rls, force) in flags.items():
        tenant_bound = {"practice", "user"} & columns[table] or table in ("practices", "amendments")
        if table in UNWALLED:
            assert not rls, f"{table} must stay unwalled (see migration 0007)"
        else:
            assert tenant_bound, f"{table}: a new table? say in 0007 whether it is walled"
            assert rls, f"{table} has no row-level security"
            assert force, f"{table}'s row-level security is not forced"


@pytest.mark.postgres
def test_a_practice_sees_its_own_rows_only(walled: Walled) -> None:
    for practice in (A, B):
        with _as_probe(walled, practice) as conn:
            for table, owners in walled.owners.items():
                mine = {k for k, p in owners.items() if p == practice}
                assert mine, f"the test wrote no {table} row of {practice}"
                assert _seen(conn, table) == mine, table


@pytest.mark.postgres
@pytest.mark.parametrize("scope", [None, "", "practice-c", "%", "practice-a OR true"])
def test_without_a_practice_nothing_is_seen(walled: Walled, scope: str | None) -> None:
    with _as_probe(walled, scope) as conn:
        for table in walled.owners:
            assert _seen(conn, table) == set(), table


@pytest.mark.postgres
def test_the_wildcard_sees_every_row(walled: Walled) -> None:
    with _as_probe(walled, tenancy.WILDCARD) as conn:
        for table, owners in walled.owners.items():
            assert _seen(conn, table) == set(owners), table


@pytest.mark.postgres
def test_a_row_of_another_practice_cannot_be_written(walled: Walled) -> None:
    with _as_probe(walled, A) as conn:
        for statement in (
            "INSERT INTO practices (id, name, timezone) VALUES ('practice-b2', 'x', 'UTC')",
            "INSERT INTO rooms (practice, id, name) VALUES ('practice-b', 'room-9', 'x')",
            "INSERT INTO users (id, practice, username, role, created_us, disabled) "
            "VALUES ('u-9', 'practice-b', 'u-9', 'admin', 0, false)",
            "INSERT INTO practice_settings (practice, call_button, reception, emergency) "
            "VALUES ('practice-b2', 'x', 'x', 'x')",
            'INSERT INTO api_tokens (token_hash, id, "user", created_us) '
            "VALUES ('h9', 'tok_9', 'practice-b-ther', 0)",
            "UPDATE rooms SET practice = 'practice-b' WHERE practice = 'practice-a'",
            "UPDATE sessions SET practice = 'practice-b'",
        ):
            try:
                conn.execute(statement)
                outcome = "done"
            except psycopg.Error as e:
                outcome = f"{type(e).__name__}: {e}"
            conn.rollback()
            assert "InsufficientPrivilege" in outcome, statement
            assert "row-level security" in outcome, statement
        # B's rows are out of reach of an UPDATE or a DELETE: nothing matches.
        assert (
            conn.execute("UPDATE rooms SET name = 'x' WHERE practice = 'practice-b'").rowcount == 0
        )
        assert conn.execute("DELETE FROM room_tokens WHERE practice = 'practice-b'").rowcount == 0
        assert conn.execute("DELETE FROM amendments").rowcount == 1  # A's one amendment only
        conn.rollback()
    with walled.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM amendments")).scalar() == 2


@pytest.mark.postgres
def test_the_chains_stay_whole_for_every_scope(walled: Walled) -> None:
    """The ledger and the audit trail are one chain each across practices: unwalled."""
    with walled.db.engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM events")).scalar()
    with _as_probe(walled, A) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (total,)


@pytest.fixture
def probe_db(walled: Walled, keys: Keys) -> Iterator[Database]:
    """The application's storage, connected as the probe role (not a superuser)."""
    db = Database(create_engine_for_probe(walled.probe_url), keys)
    try:
        yield db
    finally:
        db.dispose()


def create_engine_for_probe(conninfo: str) -> Any:
    from stepout.adapters.db.engine import create_engine_for

    return create_engine_for(sqlalchemy_url(conninfo))


@pytest.mark.postgres
def test_the_application_finds_nothing_of_another_practice_behind_the_wall(
    walled: Walled, probe_db: Database
) -> None:
    """Even a query that names practice B by its ids finds nothing under A's scope: the wall
    holds where the application's own checks would not have."""
    b_sessions = [k for k, p in walled.owners["sessions"].items() if p == B]
    b_session_ids = _ids(walled, "sessions", B)
    with probe_db.uow(read_only=True, scope=A) as uow:
        assert uow.records.sessions(b_session_ids) == {}
        assert uow.records.exits(_ids(walled, "exits", B)) == {}
        assert uow.records.concerns(_ids(walled, "concerns", B)) == {}
        assert uow.records.practice(B) is None
        assert uow.records.sessions_of_practice(B, 0, 2**62) == []
        assert uow.accounts.users(B) == []
        assert uow.accounts.rooms(B) == []
        assert list(uow.records.dump()) != []  # A's own records are there
        assert all(getattr(r, "practice", A) == A for r in uow.records.dump())
    assert b_sessions
    with probe_db.uow(read_only=True, scope=tenancy.ALL) as uow:
        assert set(uow.records.sessions(b_session_ids)) == set(b_session_ids)


@pytest.mark.postgres
def test_the_application_works_behind_the_wall(walled_anew: Walled, keys: Keys) -> None:
    """A practice's own live workflow runs as the non-superuser role under its scope: the
    ledger's append (unwalled) and the projections (walled) both pass, and the new rows are
    numbered after every practice's (`stepout_top_pks`)."""
    probe_db = Database(create_engine_for_probe(walled_anew.probe_url), keys)
    try:
        flow = Workflow(probe_db.uow, Clock())
        with tenancy.scope(A):
            s = flow.start_session(
                StartSession(practice=A, actor="practice-a-ther", therapist="practice-a-ther",
                             client="c-0002", room="room-1", modality="telehealth")
            )  # fmt: skip
        with probe_db.uow(read_only=True, scope=B) as uow:
            assert uow.records.session(s.id) is None
        with probe_db.uow(read_only=True, scope=A) as uow:
            assert uow.records.session(s.id) == s
    finally:
        probe_db.dispose()


def test_with_no_scope_no_unit_of_work_opens(db: Database) -> None:
    """On either engine: no practice scope, no read and no write (and the error names no
    record)."""
    with tenancy.sealed():
        for read_only in (True, False):
            with pytest.raises(tenancy.NoTenantScope, match="no practice scope"):
                db.uow(read_only=read_only).__enter__()
        with db.uow(read_only=True, scope=A) as uow:  # a unit of work may name its own
            assert uow.records.practice(A) is None
    with tenancy.scope(A), db.uow(read_only=True) as uow:
        assert uow.records.practice(A) is None


def _ids(walled: Walled, table: str, practice: str) -> list[str]:
    with walled.db.engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                text(f"SELECT id FROM {table} WHERE practice = :p"), {"p": practice}
            )
        ]


@pytest.mark.postgres
def test_the_walls_come_down_and_up_again(walled_anew: Walled) -> None:
    walled = walled_anew
    from alembic import command

    from stepout.adapters.db.engine import write_connection
    from stepout.adapters.db.migrate import alembic_config

    engine = walled.db.engine
    with write_connection(engine) as conn, conn.begin():
        command.downgrade(alembic_config(conn), "0006")
    with engine.connect() as conn:
        assert walled_tables(conn) == []
    walled.db.migrate()
    with engine.connect() as conn:
        assert set(walled_tables(conn)) == set(walled.owners)


OWNER: Final = "stepout_owner_probe"


@pytest.mark.postgres
def test_an_owner_that_is_not_a_superuser_migrates_and_imports(
    postgres_server: str, keys: Keys
) -> None:
    """The recommended set-up: the schema's owner is an ordinary role. It runs every migration
    (0007's function sets the scope in its body, which needs no superuser), and a bulk import
    under the wall fills the walled tables (COPY is refused under row-level security, so the
    rows go in as INSERTs)."""
    import io

    from stepout.services.importing import import_records
    from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

    name = f"stepout_t_{secrets.token_hex(6)}"
    with (
        psycopg.connect(postgres_server, autocommit=True) as admin,
        contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation),
    ):
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB").format(
                sql.Identifier(OWNER)
            )
        )
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(OWNER)
            )
        )
    host = postgres_server.rsplit("@", 1)[-1].rsplit("/", 1)[0]
    url = sqlalchemy_url(f"postgresql://{OWNER}@{host}/{name}")
    try:
        db = Database.open(url, keys=keys, migrate=False)
        try:
            db.migrate()
            buffer = io.BytesIO()
            write_jsonl(generate(GeneratorConfig(sessions=300, seed=5)), buffer)
            buffer.seek(0)
            with tenancy.scope(tenancy.ALL), db.uow() as uow:
                report = import_records(uow, buffer)
            assert report.created["session"] == 300
            with db.uow(read_only=True, scope=tenancy.ALL) as uow:
                assert len(uow.records.sessions_of_practice("demo", 0, 2**62)) == 300
            assert db.verify_ledger().ok
        finally:
            db.dispose()
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
