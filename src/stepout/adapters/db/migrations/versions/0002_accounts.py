"""Accounts: users, API tokens, rooms, room display tokens, browser sessions, and what each
practice's room displays tell a client; an index for a room's session in progress.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Name = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_index(
        "ix_sessions_open_room",
        "sessions",
        ["practice", "room"],
        sqlite_where=sa.text("end_us IS NULL"),
        postgresql_where=sa.text("end_us IS NULL"),
    )
    op.create_table(
        "practice_settings",
        sa.Column("practice", Name, nullable=False),
        sa.Column("call_button", sa.Text(), nullable=False),
        sa.Column("reception", sa.Text(), nullable=False),
        sa.Column("emergency", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("practice", name="pk_practice_settings"),
    )
    op.create_table(
        "users",
        sa.Column("id", Name, nullable=False),
        sa.Column("practice", Name, nullable=False),
        sa.Column("username", Name, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("id", Name, nullable=False),
        sa.Column("user", Name, nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_api_tokens"),
        sa.UniqueConstraint("id", name="uq_api_tokens_id"),
        sa.ForeignKeyConstraint(["user"], ["users.id"], name="fk_api_tokens_user_users"),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user"])
    op.create_table(
        "rooms",
        sa.Column("practice", Name, nullable=False),
        sa.Column("id", Name, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("practice", "id", name="pk_rooms"),
    )
    op.create_table(
        "room_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("practice", Name, nullable=False),
        sa.Column("room", Name, nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_room_tokens"),
        sa.ForeignKeyConstraint(
            ["practice", "room"],
            ["rooms.practice", "rooms.id"],
            name="fk_room_tokens_practice_rooms",
        ),
    )
    op.create_index("ix_room_tokens_room", "room_tokens", ["practice", "room"])
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user", Name, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("seen_us", sa.BigInteger(), nullable=False),
        sa.Column("ended_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_web_sessions"),
        sa.ForeignKeyConstraint(["user"], ["users.id"], name="fk_web_sessions_user_users"),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user"])


def downgrade() -> None:
    for table in (
        "web_sessions",
        "room_tokens",
        "rooms",
        "api_tokens",
        "users",
        "practice_settings",
    ):
        op.drop_table(table)
    op.drop_index("ix_sessions_open_room", "sessions")
