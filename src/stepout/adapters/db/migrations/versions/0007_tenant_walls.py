"""Sealed tenants on PostgreSQL: row-level security, forced, scoped by the transaction's practice.

Each transaction names its practice in the setting `stepout.practice` (`set_config(...,
true)`, see `stepout.adapters.db.tenancy`): a practice id, or `*` for the operator's commands
that span practices. One policy per table, `tenant_wall`, shows and accepts only the rows of
that practice (every row for `*`; none when the setting is missing or empty: fail closed), for
SELECT, INSERT, UPDATE and DELETE alike. FORCE applies it to the tables' owner too; only a
superuser or a BYPASSRLS role passes it (the application must run as neither).

- Tables with a `practice` column: their own practice.
- `practices`: its `id`.
- Tables of a user's credentials (`api_tokens`, `web_sessions`, `mfa_factors`,
  `recovery_codes`, `pending_sign_ins`): the user's row must be visible (`users` is walled).
- `amendments` has no practice: its subject (a session, exit or concern) must be visible.

Not walled: the ledger (`events`) and the audit trail (`audit_log`): each is one hash chain
across practices, whose next entry needs the head of every practice's; their free text is
encrypted (0004) and the application reads them only to append, verify and rebuild. Nor
`login_failures` (hashes of names and addresses, for throttling across practices).

One function reads past the wall: `stepout_top_pks()`, the highest key of sessions, exits and
concerns over every practice (the projection numbers new rows after them); it returns those
three numbers only.

SQLite has no row-level security: nothing changes there (the scope is checked as each unit of
work opens, on every engine).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from typing import Final

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY: Final = "tenant_wall"
SCOPE: Final = "current_setting('stepout.practice', true)"
EVERY: Final = f"{SCOPE} = '*'"


def _own(column: str) -> str:
    return f"({column} = {SCOPE} OR {EVERY})"


def _users_row(table: str) -> str:
    return f'EXISTS (SELECT 1 FROM users u WHERE u.id = {table}."user")'


_SUBJECTS: Final = " OR ".join(
    f"(entity = '{entity}' AND EXISTS (SELECT 1 FROM {table} t WHERE t.id = amendments.subject))"
    for entity, table in (("session", "sessions"), ("exit", "exits"), ("concern", "concerns"))
)

# table -> the condition a row must meet to be seen, inserted or kept by an update.
WALLS: Final[dict[str, str]] = {
    "practices": _own("id"),
    "sessions": _own("practice"),
    "exits": _own("practice"),
    "concerns": _own("practice"),
    "amendments": f"({EVERY} OR {_SUBJECTS})",
    "practice_settings": _own("practice"),
    "users": _own("practice"),
    "rooms": _own("practice"),
    "room_tokens": _own("practice"),
    "mfa_waivers": _own("practice"),
    "data_keys": _own("practice"),
    **{
        table: f"({EVERY} OR {_users_row(table)})"
        for table in (
            "api_tokens",
            "web_sessions",
            "mfa_factors",
            "recovery_codes",
            "pending_sign_ins",
        )
    },
}
UNWALLED: Final = ("events", "audit_log", "login_failures")  # see above; a test checks both


# The projection numbers new rows after the highest key of every practice, which a scoped
# transaction cannot see: this function reads them in the scope `*` and puts the caller's scope
# back, and tells nothing but three numbers. (It sets the scope in its body: a `SET` clause on
# a function needs a superuser for a setting PostgreSQL does not know, and the owner need not
# be one.)
TOP_PKS: Final = """
CREATE FUNCTION stepout_top_pks(OUT top_session bigint, OUT top_exit bigint,
                                OUT top_concern bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    caller text := coalesce(current_setting('stepout.practice', true), '');
BEGIN
    PERFORM set_config('stepout.practice', '*', true);
    SELECT max(pk) INTO top_session FROM sessions;
    SELECT max(pk) INTO top_exit FROM exits;
    SELECT max(pk) INTO top_concern FROM concerns;
    PERFORM set_config('stepout.practice', caller, true);
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(TOP_PKS)
    for table, condition in WALLS.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON {table} USING {condition} WITH CHECK {condition}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in WALLS:
        op.execute(f"DROP POLICY {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION stepout_top_pks()")
