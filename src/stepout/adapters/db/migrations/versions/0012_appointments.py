"""Appointments: the projection of `appointment.scheduled`, `appointment.rescheduled` and
`appointment.cancelled` (one row per appointment id, `stepout.domain.schedule`), behind the
tenant wall on PostgreSQL as every table with a `practice` column (migration 0007: ENABLE +
FORCE, policy `tenant_wall`).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in tables.py (a migration never imports the live models).
Name = sa.String().with_variant(sa.String(collation="C"), "postgresql")

TABLE: Final = "appointments"
POLICY: Final = "tenant_wall"
SCOPE: Final = "current_setting('stepout.practice', true)"
WALL: Final = f"(practice = {SCOPE} OR {SCOPE} = '*')"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", Name, nullable=False),
        sa.Column("practice", Name, nullable=False),
        sa.Column("therapist", Name, nullable=False),
        sa.Column("client", Name, nullable=False),
        sa.Column("room", Name, nullable=False),
        sa.Column("modality", sa.String(32), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.Column("billed_codes", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice"], ["practices.id"], name="fk_appointments_practice_practices"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_appointments"),
    )
    op.create_index("ix_appointments_therapist_start", TABLE, ["practice", "therapist", "start_us"])
    op.create_index("ix_appointments_practice_start", TABLE, ["practice", "start_us"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON {TABLE} USING {WALL} WITH CHECK {WALL}")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP POLICY {POLICY} ON {TABLE}")
    op.drop_index("ix_appointments_practice_start", table_name=TABLE)
    op.drop_index("ix_appointments_therapist_start", table_name=TABLE)
    op.drop_table(TABLE)
