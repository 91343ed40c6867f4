"""The dashboard's rollup (`stepout.adapters.db.rollup`): ended sessions per practice-local
day, therapist and room by billing status (`dashboard_days`), the same per ISO week
(`dashboard_weeks`), and one row per exit of an ended session with what the exit figures need
(`dashboard_exits`). All three carry a practice: behind the tenant wall on PostgreSQL, as
every such table (migration 0007: ENABLE + FORCE, policy `tenant_wall`). The upgrade fills
them from the sessions and exits already stored (about 25 s for a million sessions on SQLite,
70 s on PostgreSQL).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in tables.py (a migration never imports the live models).
Name = sa.String().with_variant(sa.String(collation="C"), "postgresql")

TABLES: Final = ("dashboard_days", "dashboard_weeks", "dashboard_exits")
POLICY: Final = "tenant_wall"
SCOPE: Final = "current_setting('stepout.practice', true)"
WALL: Final = f"(practice = {SCOPE} OR {SCOPE} = '*')"


def upgrade() -> None:
    op.create_table(
        "dashboard_days",
        sa.Column("practice", Name, nullable=False),
        sa.Column("day", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("therapist", Name, nullable=False),
        sa.Column("room", Name, nullable=False),
        sa.Column("supported", sa.BigInteger(), nullable=False),
        sa.Column("undercoded", sa.BigInteger(), nullable=False),
        sa.Column("unsupported", sa.BigInteger(), nullable=False),
        sa.Column("not_billed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("practice", "day", "therapist", "room", name="pk_dashboard_days"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "dashboard_weeks",
        sa.Column("practice", Name, nullable=False),
        sa.Column("week", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("therapist", Name, nullable=False),
        sa.Column("room", Name, nullable=False),
        sa.Column("supported", sa.BigInteger(), nullable=False),
        sa.Column("undercoded", sa.BigInteger(), nullable=False),
        sa.Column("unsupported", sa.BigInteger(), nullable=False),
        sa.Column("not_billed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("practice", "week", "therapist", "room", name="pk_dashboard_weeks"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "dashboard_exits",
        sa.Column("practice", Name, nullable=False),
        sa.Column("day", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("therapist", Name, nullable=False),
        sa.Column("exit_pk", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("room", Name, nullable=False),
        sa.Column("session_pk", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("duration_us", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint(
            "practice", "day", "therapist", "exit_pk", name="pk_dashboard_exits"
        ),
        sqlite_with_rowid=False,
    )
    if op.get_context().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY {POLICY} ON {table} USING {WALL} WITH CHECK {WALL}")
    # The rows of what is already stored. The code that computes them is the projection's
    # (one definition of the figures); a later change of these tables comes with its own
    # migration, which recomputes them again.
    from stepout.adapters.db.rollup import refresh_practice

    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        refresh_practice(conn)
        return
    # Every practice's rows (the walls hide them from an unscoped transaction), then the
    # scope the migration ran in.
    before = conn.exec_driver_sql(f"SELECT {SCOPE}").scalar()
    conn.exec_driver_sql("SELECT set_config('stepout.practice', '*', true)")
    refresh_practice(conn)
    conn.exec_driver_sql(
        "SELECT set_config('stepout.practice', %(scope)s, true)", {"scope": before or ""}
    )


def downgrade() -> None:
    for table in reversed(TABLES):
        if op.get_context().dialect.name == "postgresql":
            op.execute(f"DROP POLICY {POLICY} ON {table}")
        op.drop_table(table)
