"""The dashboard's index: sessions by practice and therapist, with their times, so that the
share of sessions with an exit per therapist is counted from the index in therapist order
(SQLite then groups without sorting a practice's sessions; 0.6 s -> 0.1 s for a million).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_sessions_practice_therapist",
        "sessions",
        ["practice", "therapist", "start_us", "end_us"],
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_practice_therapist", table_name="sessions")
