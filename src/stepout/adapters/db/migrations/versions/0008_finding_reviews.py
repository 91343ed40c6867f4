"""Finding reviews: the projection of `finding.acknowledged`, `finding.assigned` and
`finding.resolved` (one row per finding key), behind the tenant wall on PostgreSQL as every
table with a `practice` column (migration 0007: ENABLE + FORCE, policy `tenant_wall`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in tables.py (a migration never imports the live models).
Name = sa.String().with_variant(sa.String(collation="C"), "postgresql")

TABLE: Final = "finding_reviews"
POLICY: Final = "tenant_wall"
SCOPE: Final = "current_setting('stepout.practice', true)"
WALL: Final = f"(practice = {SCOPE} OR {SCOPE} = '*')"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("key", Name, nullable=False),
        sa.Column("practice", Name, nullable=False),
        sa.Column("rule", Name, nullable=False),
        sa.Column("session", Name, nullable=True),
        sa.Column("exit", Name, nullable=True),
        sa.Column("therapist", Name, nullable=True),
        sa.Column("state", Name, nullable=False),
        sa.Column("assignee", Name, nullable=True),
        sa.Column("assigned_by", Name, nullable=True),
        sa.Column("assigned_us", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_by", Name, nullable=True),
        sa.Column("acknowledged_us", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_note", sa.Text(), nullable=True),
        sa.Column("resolved_by", Name, nullable=True),
        sa.Column("resolved_us", sa.BigInteger(), nullable=True),
        sa.Column("resolved_note", sa.Text(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_finding_reviews"),
    )
    op.create_index("ix_finding_reviews_practice_state", TABLE, ["practice", "state"])
    op.create_index("ix_finding_reviews_assignee", TABLE, ["practice", "assignee"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON {TABLE} USING {WALL} WITH CHECK {WALL}")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP POLICY {POLICY} ON {TABLE}")
    op.drop_index("ix_finding_reviews_assignee", table_name=TABLE)
    op.drop_index("ix_finding_reviews_practice_state", table_name=TABLE)
    op.drop_table(TABLE)
