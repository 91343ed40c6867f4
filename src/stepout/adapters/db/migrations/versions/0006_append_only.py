"""Append-only: triggers (and on PostgreSQL, privileges) refuse UPDATE and DELETE on the
ledger and the audit trail.

Revision 0001 guarded the ledger with one statement trigger; this replaces it with a guard per
table and per verb, for `events` and `audit_log` alike:

- SQLite: `BEFORE UPDATE` and `BEFORE DELETE` triggers that abort the statement
  (`<table>_no_update`, `<table>_no_delete`).
- PostgreSQL: one trigger function, `stepout_append_only()`, raising the message it is given;
  row triggers on UPDATE and DELETE (`<table>_no_change`) and a statement trigger on TRUNCATE
  (`<table>_no_truncate`); and `REVOKE UPDATE, DELETE, TRUNCATE ... FROM PUBLIC`. The triggers
  stop the application's own role; a role that owns the tables can still drop or disable them,
  which is why the application should not run as the migration's owner (see
  docs/operations.md, "Append-only tables").

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, message) for each guarded table.
GUARDED: tuple[tuple[str, str], ...] = (
    ("events", "events are append-only"),
    ("audit_log", "audit records are append-only"),
)

# Revision 0001's guard of the ledger, replaced here and restored by `downgrade`.
OLD_MESSAGE = "the ledger is append-only"
OLD_SQLITE = [
    f"CREATE TRIGGER events_no_{verb} BEFORE {verb.upper()} ON events "
    f"BEGIN SELECT RAISE(ABORT, '{OLD_MESSAGE}'); END"
    for verb in ("update", "delete")
]
OLD_PG = [
    "CREATE FUNCTION stepout_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{OLD_MESSAGE}'; END $$",
    "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION stepout_append_only()",
]

PG_FUNCTION = (
    "CREATE FUNCTION stepout_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'insufficient_privilege'; END $$"
)


def _sqlite_guards(table: str, message: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        for verb in ("update", "delete")
    ]


def _pg_guards(table: str, message: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION stepout_append_only('{message}')",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION stepout_append_only('{message}')",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC",
    ]


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER events_append_only ON events")
        op.execute("DROP FUNCTION stepout_append_only()")
        op.execute(PG_FUNCTION)
        for table, message in GUARDED:
            for statement in _pg_guards(table, message):
                op.execute(statement)
    else:
        op.execute("DROP TRIGGER events_no_update")
        op.execute("DROP TRIGGER events_no_delete")
        for table, message in GUARDED:
            for statement in _sqlite_guards(table, message):
                op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table, _ in GUARDED:
            op.execute(f"DROP TRIGGER {table}_no_change ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION stepout_append_only()")
        for statement in OLD_PG:
            op.execute(statement)
    else:
        for table, _ in GUARDED:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
        for statement in OLD_SQLITE:
            op.execute(statement)
