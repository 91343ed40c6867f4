"""The ledger and its projections.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in tables.py (a migration never imports the live models).
Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String().with_variant(sa.String(collation="C"), "postgresql")
OPEN = sa.text("returned_us IS NULL")

APPEND_ONLY = "the ledger is append-only"
SQLITE_GUARDS = [
    f"CREATE TRIGGER events_no_{verb} BEFORE {verb.upper()} ON events "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
    for verb in ("update", "delete")
]
PG_GUARDS = [
    "CREATE FUNCTION stepout_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$",
    "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION stepout_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", Key, autoincrement=False, nullable=False),
        sa.Column("recorded_us", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("practice", Name, nullable=False),
        sa.Column("subject", Name, nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("actor", Name, nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
    )
    op.create_table(
        "practices",
        sa.Column("id", Name, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_practices"),
    )
    op.create_table(
        "sessions",
        sa.Column("pk", Key, autoincrement=False, nullable=False),
        sa.Column("id", Name, nullable=False),
        sa.Column("practice", Name, nullable=False),
        sa.Column("therapist", Name, nullable=False),
        sa.Column("client", Name, nullable=False),
        sa.Column("room", Name, nullable=False),
        sa.Column("modality", sa.String(32), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=True),
        sa.Column("billed_codes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_sessions"),
        sa.UniqueConstraint("id", name="uq_sessions_id"),
        sa.ForeignKeyConstraint(
            ["practice"], ["practices.id"], name="fk_sessions_practice_practices"
        ),
    )
    op.create_index("ix_sessions_practice_start", "sessions", ["practice", "start_us", "id"])
    op.create_index("ix_sessions_therapist", "sessions", ["therapist"])
    op.create_table(
        "exits",
        sa.Column("pk", Key, autoincrement=False, nullable=False),
        sa.Column("id", Name, nullable=False),
        sa.Column("session_pk", Key, nullable=False),
        sa.Column("practice", Name, nullable=False),
        sa.Column("therapist", Name, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("reason_note", sa.Text(), nullable=True),
        sa.Column("left_us", sa.BigInteger(), nullable=False),
        sa.Column("returned_us", sa.BigInteger(), nullable=True),
        sa.Column("client_informed", sa.String(32), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("safeguards", sa.Text(), nullable=False),
        sa.Column("client_attended_by", sa.Text(), nullable=True),
        sa.Column("ems", sa.String(32), nullable=True),
        sa.Column("checked_in", sa.Boolean(), nullable=False),
        sa.Column("signed_us", sa.BigInteger(), nullable=True),
        sa.Column("expected_minutes", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_exits"),
        sa.UniqueConstraint("id", name="uq_exits_id"),
        sa.ForeignKeyConstraint(
            ["session_pk"], ["sessions.pk"], name="fk_exits_session_pk_sessions"
        ),
    )
    op.create_index("ix_exits_session", "exits", ["session_pk"])
    op.create_index(
        "ix_exits_open_by_therapist",
        "exits",
        ["therapist"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_table(
        "concerns",
        sa.Column("pk", Key, autoincrement=False, nullable=False),
        sa.Column("id", Name, nullable=False),
        sa.Column("session_pk", Key, nullable=False),
        sa.Column("practice", Name, nullable=False),
        sa.Column("raised_us", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("acknowledged_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_concerns"),
        sa.UniqueConstraint("id", name="uq_concerns_id"),
        sa.ForeignKeyConstraint(
            ["session_pk"], ["sessions.pk"], name="fk_concerns_session_pk_sessions"
        ),
    )
    op.create_index("ix_concerns_session", "concerns", ["session_pk"])
    op.create_table(
        "amendments",
        sa.Column("seq", Key, autoincrement=False, nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("subject", Name, nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_amendments"),
    )
    op.create_index("ix_amendments_subject", "amendments", ["entity", "subject"])
    for statement in PG_GUARDS if op.get_context().dialect.name == "postgresql" else SQLITE_GUARDS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER events_append_only ON events")
        op.execute("DROP FUNCTION stepout_append_only()")
    for table in ("amendments", "concerns", "exits", "sessions", "practices", "events"):
        op.drop_table(table)
