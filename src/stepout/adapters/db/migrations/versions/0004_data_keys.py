"""Field encryption: each practice's data keys, wrapped by the key file's encryption keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Name = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("practice", Name, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("practice", "generation", name="pk_data_keys"),
    )


def downgrade() -> None:
    op.drop_table("data_keys")
