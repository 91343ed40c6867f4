"""Staff authentication: TOTP multi-factor enrolment, recovery codes, the second step of a
sign-in, login throttling, and the demo practice's waiver of MFA.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Name = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "mfa_factors",
        sa.Column("user", Name, nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_us", sa.BigInteger(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("user", name="pk_mfa_factors"),
        sa.ForeignKeyConstraint(["user"], ["users.id"], name="fk_mfa_factors_user_users"),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("user", Name, nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("used_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_recovery_codes"),
        sa.ForeignKeyConstraint(["user"], ["users.id"], name="fk_recovery_codes_user_users"),
    )
    op.create_index("ix_recovery_codes_user", "recovery_codes", ["user"])
    op.create_table(
        "pending_sign_ins",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user", Name, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("ended_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_pending_sign_ins"),
        sa.ForeignKeyConstraint(["user"], ["users.id"], name="fk_pending_sign_ins_user_users"),
    )
    op.create_index("ix_pending_sign_ins_user", "pending_sign_ins", ["user"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_subject", "login_failures", ["subject", "at_us"])
    op.create_index("ix_login_failures_at", "login_failures", ["at_us"])
    op.create_table(
        "mfa_waivers",
        sa.Column("practice", Name, nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("practice", name="pk_mfa_waivers"),
    )


def downgrade() -> None:
    for table in (
        "mfa_waivers",
        "login_failures",
        "pending_sign_ins",
        "recovery_codes",
        "mfa_factors",
    ):
        op.drop_table(table)
