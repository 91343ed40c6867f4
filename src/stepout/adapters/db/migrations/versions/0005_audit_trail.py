"""The audit trail: who read or wrote what, when, from where, chained with an HMAC.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in tables.py (a migration never imports the live models).
Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", Key, autoincrement=False, nullable=False),
        sa.Column("recorded_us", sa.BigInteger(), nullable=False),
        sa.Column("practice", Name, nullable=True),
        sa.Column("actor", Name, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", Name, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("item_count", sa.BigInteger(), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_target", "audit_log", ["target"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_table("audit_log")
