"""The findings store: each practice's last audit run (`finding_runs`) and its findings
(`findings`), for the dashboard's findings chart, the monthly report and the review's lookup
of a finding. Both tables carry a practice: behind the tenant wall on PostgreSQL, as every
such table (migration 0007: ENABLE + FORCE, policy `tenant_wall`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in tables.py (a migration never imports the live models).
Name = sa.String().with_variant(sa.String(collation="C"), "postgresql")

TABLES: Final = ("finding_runs", "findings")
POLICY: Final = "tenant_wall"
SCOPE: Final = "current_setting('stepout.practice', true)"
WALL: Final = f"(practice = {SCOPE} OR {SCOPE} = '*')"


def upgrade() -> None:
    op.create_table(
        "finding_runs",
        sa.Column("practice", Name, nullable=False),
        sa.Column("policy_name", sa.Text(), nullable=False),
        sa.Column("policy_version", Name, nullable=False),
        sa.Column("policy_digest", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("as_of_us", sa.BigInteger(), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
        sa.Column("valid_until_us", sa.BigInteger(), nullable=True),
        sa.Column("computed_us", sa.BigInteger(), nullable=False),
        sa.Column("findings", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("practice", name="pk_finding_runs"),
    )
    op.create_table(
        "findings",
        sa.Column("practice", Name, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("key", Name, nullable=False),
        sa.Column("rule", Name, nullable=False),
        sa.Column("severity", sa.String(32), nullable=False),
        sa.Column("session", Name, nullable=True),
        sa.Column("exit", Name, nullable=True),
        sa.Column("therapist", Name, nullable=True),
        sa.Column("room", Name, nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("start_us", sa.BigInteger(), nullable=True),
        sa.Column("week", sa.String(32), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("practice", "n", name="pk_findings"),
    )
    op.create_index("ix_findings_practice_start", "findings", ["practice", "start_us"])
    op.create_index("ix_findings_practice_key", "findings", ["practice", "key"])
    if op.get_context().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY {POLICY} ON {table} USING {WALL} WITH CHECK {WALL}")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP POLICY {POLICY} ON {table}")
    op.drop_index("ix_findings_practice_key", table_name="findings")
    op.drop_index("ix_findings_practice_start", table_name="findings")
    op.drop_table("findings")
    op.drop_table("finding_runs")
