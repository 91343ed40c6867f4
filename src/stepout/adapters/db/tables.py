"""The tables: the ledger (`events`) and the projections folded from it.

Instants are BIGINT microseconds since the epoch (UTC). Projection rows carry an integer `pk`
that the projection assigns itself, in ledger order, so that a rebuild reproduces every row
exactly; the public ids (`id`) are unique text. Lists are stored as JSON arrays in text.
Migrations (`migrations/versions`) create the same schema; a test compares the two.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT everywhere, except that SQLite needs INTEGER for a primary key to be the rowid.
Key = BigInteger().with_variant(Integer(), "sqlite")
# Ids and names compare byte-wise on both engines (SQLite's BINARY, PostgreSQL's "C"), so that
# `ORDER BY id` means the same everywhere, whatever the database's locale.
Name = String().with_variant(String(collation="C"), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class EventRow(Base):
    """The append-only, hash-chained ledger. `data` is canonical JSON (sorted keys)."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(Key, primary_key=True, autoincrement=False)
    recorded_us: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(64))
    practice: Mapped[str] = mapped_column(Name)
    subject: Mapped[str] = mapped_column(Name)
    at_us: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str | None] = mapped_column(Name)
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class PracticeRow(Base):
    __tablename__ = "practices"

    id: Mapped[str] = mapped_column(Name, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))


class SessionRow(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_practice_start", "practice", "start_us", "id"),
        Index("ix_sessions_therapist", "therapist"),
        # The dashboard's per-therapist counts, in index order (migration 0009).
        Index("ix_sessions_practice_therapist", "practice", "therapist", "start_us", "end_us"),
        Index(
            "ix_sessions_open_room",
            "practice",
            "room",
            sqlite_where="end_us IS NULL",
            postgresql_where="end_us IS NULL",
        ),
    )

    pk: Mapped[int] = mapped_column(Key, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(Name, unique=True)
    practice: Mapped[str] = mapped_column(Name, ForeignKey("practices.id"))
    therapist: Mapped[str] = mapped_column(Name)
    client: Mapped[str] = mapped_column(Name)
    room: Mapped[str] = mapped_column(Name)
    modality: Mapped[str] = mapped_column(String(32))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int | None] = mapped_column(BigInteger)
    billed_codes: Mapped[str] = mapped_column(Text)  # JSON array, in billed order


class ExitRow(Base):
    """`practice` and `therapist` repeat the session's, for the open-exit check."""

    __tablename__ = "exits"
    __table_args__ = (
        Index("ix_exits_session", "session_pk"),
        Index(
            "ix_exits_open_by_therapist",
            "therapist",
            sqlite_where="returned_us IS NULL",
            postgresql_where="returned_us IS NULL",
        ),
    )

    pk: Mapped[int] = mapped_column(Key, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(Name, unique=True)
    session_pk: Mapped[int] = mapped_column(ForeignKey("sessions.pk"))
    practice: Mapped[str] = mapped_column(Name)
    therapist: Mapped[str] = mapped_column(Name)
    source: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(32))
    reason_note: Mapped[str | None] = mapped_column(Text)
    left_us: Mapped[int] = mapped_column(BigInteger)
    returned_us: Mapped[int | None] = mapped_column(BigInteger)
    client_informed: Mapped[str] = mapped_column(String(32))
    explanation: Mapped[str | None] = mapped_column(Text)
    safeguards: Mapped[str] = mapped_column(Text)  # JSON array, sorted
    client_attended_by: Mapped[str | None] = mapped_column(Text)
    ems: Mapped[str | None] = mapped_column(String(32))
    checked_in: Mapped[bool] = mapped_column(Boolean)
    signed_us: Mapped[int | None] = mapped_column(BigInteger)
    expected_minutes: Mapped[int | None] = mapped_column(Integer)


class ConcernRow(Base):
    __tablename__ = "concerns"
    __table_args__ = (Index("ix_concerns_session", "session_pk"),)

    pk: Mapped[int] = mapped_column(Key, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(Name, unique=True)
    session_pk: Mapped[int] = mapped_column(ForeignKey("sessions.pk"))
    practice: Mapped[str] = mapped_column(Name)
    raised_us: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    acknowledged_us: Mapped[int | None] = mapped_column(BigInteger)


class AmendmentRow(Base):
    """One row per `*.amended` event: what changed, and the note, as the addendum reads."""

    __tablename__ = "amendments"
    __table_args__ = (Index("ix_amendments_subject", "entity", "subject"),)

    seq: Mapped[int] = mapped_column(Key, primary_key=True, autoincrement=False)  # the entry
    entity: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(Name)
    at_us: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[str] = mapped_column(Text)  # canonical JSON object


class FindingReviewRow(Base):
    """A finding's review (`stepout.domain.reviews`): one row per finding key, folded from its
    `finding.*` events. The finding's ids are repeated from the events; the notes are sealed
    (`fieldcrypt`, entity `finding`, id: the key)."""

    __tablename__ = "finding_reviews"
    __table_args__ = (
        Index("ix_finding_reviews_practice_state", "practice", "state"),
        Index("ix_finding_reviews_assignee", "practice", "assignee"),
    )

    key: Mapped[str] = mapped_column(Name, primary_key=True)
    practice: Mapped[str] = mapped_column(Name)
    rule: Mapped[str] = mapped_column(Name)
    session: Mapped[str | None] = mapped_column(Name)
    exit: Mapped[str | None] = mapped_column(Name)
    therapist: Mapped[str | None] = mapped_column(Name)
    state: Mapped[str] = mapped_column(Name)  # open, acknowledged, resolved
    assignee: Mapped[str | None] = mapped_column(Name)
    assigned_by: Mapped[str | None] = mapped_column(Name)
    assigned_us: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_by: Mapped[str | None] = mapped_column(Name)
    acknowledged_us: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(Name)
    resolved_us: Mapped[int | None] = mapped_column(BigInteger)
    resolved_note: Mapped[str | None] = mapped_column(Text)
    last_seq: Mapped[int] = mapped_column(BigInteger)  # the ledger entry that last changed it


class AppointmentRow(Base):
    """An appointment (`stepout.domain.schedule`), folded from its `appointment.*` events.
    Whether it has started is read from `sessions` (a session takes the appointment's id)."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_therapist_start", "practice", "therapist", "start_us"),
        Index("ix_appointments_practice_start", "practice", "start_us"),
    )

    id: Mapped[str] = mapped_column(Name, primary_key=True)
    practice: Mapped[str] = mapped_column(Name, ForeignKey("practices.id"))
    therapist: Mapped[str] = mapped_column(Name)
    client: Mapped[str] = mapped_column(Name)
    room: Mapped[str] = mapped_column(Name)
    modality: Mapped[str] = mapped_column(String(32))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    billed_codes: Mapped[str] = mapped_column(Text)  # JSON array, in billed order
    status: Mapped[str] = mapped_column(String(32))  # scheduled, cancelled
    last_seq: Mapped[int] = mapped_column(BigInteger)  # the ledger entry that last changed it


# Children first.
PROJECTIONS = (
    "dashboard_exits",
    "dashboard_weeks",
    "dashboard_days",
    "appointments",
    "finding_reviews",
    "amendments",
    "concerns",
    "exits",
    "sessions",
    "practices",
)


# Accounts: who may use Stepout. Not health data and not in the ledger. Secrets (passwords and
# tokens) are stored only as hashes: argon2 for passwords, SHA-256 for random tokens. They name
# their practice without a foreign key: `practices` is a projection, emptied by a rebuild.


class PracticeSettingsRow(Base):
    """What the room displays of a practice tell a client alone in the room."""

    __tablename__ = "practice_settings"

    practice: Mapped[str] = mapped_column(Name, primary_key=True)
    call_button: Mapped[str] = mapped_column(Text)
    reception: Mapped[str] = mapped_column(Text)
    emergency: Mapped[str] = mapped_column(Text)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(Name, primary_key=True)
    practice: Mapped[str] = mapped_column(Name)
    username: Mapped[str] = mapped_column(Name, unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(Text)
    created_us: Mapped[int] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(Boolean)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_user", "user"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(Name, unique=True)  # names the token for revocation
    user: Mapped[str] = mapped_column(Name, ForeignKey("users.id"))
    created_us: Mapped[int] = mapped_column(BigInteger)
    revoked_us: Mapped[int | None] = mapped_column(BigInteger)


class RoomRow(Base):
    __tablename__ = "rooms"

    practice: Mapped[str] = mapped_column(Name, primary_key=True)
    id: Mapped[str] = mapped_column(Name, primary_key=True)
    name: Mapped[str] = mapped_column(Text)


class RoomTokenRow(Base):
    __tablename__ = "room_tokens"
    __table_args__ = (
        ForeignKeyConstraint(["practice", "room"], ["rooms.practice", "rooms.id"]),
        Index("ix_room_tokens_room", "practice", "room"),
    )

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    practice: Mapped[str] = mapped_column(Name)
    room: Mapped[str] = mapped_column(Name)
    created_us: Mapped[int] = mapped_column(BigInteger)
    revoked_us: Mapped[int | None] = mapped_column(BigInteger)


class WebSessionRow(Base):
    """A signed-in browser. `csrf` is the token its forms must send back."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user", "user"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(Name, ForeignKey("users.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_us: Mapped[int] = mapped_column(BigInteger)
    seen_us: Mapped[int] = mapped_column(BigInteger)
    ended_us: Mapped[int | None] = mapped_column(BigInteger)


# Staff authentication (migration 0003): multi-factor enrolment, recovery codes, throttling.


class MfaFactorRow(Base):
    """A user's TOTP secret, sealed with AES-GCM (a key derived from the key file, the user id
    bound as associated data). `confirmed_us` stays empty until a first code proves the
    enrolment; `last_step` is the last time step a code was accepted for, so that no code
    works twice."""

    __tablename__ = "mfa_factors"

    user: Mapped[str] = mapped_column(Name, ForeignKey("users.id"), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    created_us: Mapped[int] = mapped_column(BigInteger)
    confirmed_us: Mapped[int | None] = mapped_column(BigInteger)
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCodeRow(Base):
    """One-time recovery codes, stored as SHA-256 hashes; `used_us` once spent."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user", "user"),)

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(Name, ForeignKey("users.id"))
    created_us: Mapped[int] = mapped_column(BigInteger)
    used_us: Mapped[int | None] = mapped_column(BigInteger)


class PendingSignInRow(Base):
    """A browser that gave the right password and still owes its second factor. It opens no
    page but the second step's; a full browser session (`web_sessions`) replaces it."""

    __tablename__ = "pending_sign_ins"
    __table_args__ = (Index("ix_pending_sign_ins_user", "user"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(Name, ForeignKey("users.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_us: Mapped[int] = mapped_column(BigInteger)
    ended_us: Mapped[int | None] = mapped_column(BigInteger)


class LoginFailureRow(Base):
    """A failed password or code, for throttling. `subject` is a SHA-256 of the account name
    or the address (neither is stored as typed); rows older than the window are deleted."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_subject", "subject", "at_us"),
        Index("ix_login_failures_at", "at_us"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64))
    at_us: Mapped[int] = mapped_column(BigInteger)


class MfaWaiverRow(Base):
    """A practice whose staff sign in with a password only: the demo practice, never another
    (only `stepout demo` writes here)."""

    __tablename__ = "mfa_waivers"

    practice: Mapped[str] = mapped_column(Name, primary_key=True)
    created_us: Mapped[int] = mapped_column(BigInteger)


# Field encryption (migration 0004): each practice's data keys, wrapped.


class DataKeyRow(Base):
    """A practice's data key (AES-256-GCM) of one generation, wrapped (encrypted) with the key
    file's encryption key `kek_version`: a nonce, then the ciphertext and its tag
    (`stepout.adapters.db.datakeys`). New writes use a practice's highest generation."""

    __tablename__ = "data_keys"

    practice: Mapped[str] = mapped_column(Name, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kek_version: Mapped[int] = mapped_column(Integer)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_us: Mapped[int] = mapped_column(BigInteger)


# The audit trail (migration 0005).


class AuditRow(Base):
    """The audit trail: who read or wrote which record, when, from where, with what outcome.
    Append-only and hash-chained like the ledger (`stepout.domain.audit_trail`); ids and names
    of actions only, never health data. `item_count` is how many records a list read returned
    (the lines an import read). One chain spans every practice: an append reads the head
    across practices, so no row-level policy may hide rows of another practice from it."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target"),)

    seq: Mapped[int] = mapped_column(Key, primary_key=True, autoincrement=False)
    recorded_us: Mapped[int] = mapped_column(BigInteger)
    practice: Mapped[str | None] = mapped_column(Name)
    actor: Mapped[str] = mapped_column(Name)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(Name)
    outcome: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    item_count: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# The findings store (migration 0011): the last audit of each practice, kept for the
# dashboard's findings chart, the monthly report and the review's lookup of a finding. Not a
# projection of the ledger: an audit's result under a policy at an instant, recomputed when
# the ledger moves on (`stepout.adapters.db.findings_store`).


class FindingRunRow(Base):
    """The audit run whose findings `findings` holds for a practice: under which policy, judged
    at which instant (`as_of_us`), over the ledger up to which entry (`ledger_seq`), and until
    when its deadlines hold (`valid_until_us`: the next instant a time limit passes; None: no
    pending one)."""

    __tablename__ = "finding_runs"

    practice: Mapped[str] = mapped_column(Name, primary_key=True)
    policy_name: Mapped[str] = mapped_column(Text)
    policy_version: Mapped[str] = mapped_column(Name)
    policy_digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the policy's settings
    timezone: Mapped[str] = mapped_column(String(64))
    as_of_us: Mapped[int] = mapped_column(BigInteger)
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    valid_until_us: Mapped[int | None] = mapped_column(BigInteger)
    computed_us: Mapped[int] = mapped_column(BigInteger)
    findings: Mapped[int] = mapped_column(BigInteger)  # rows of `findings` it wrote


class StoredFindingRow(Base):
    """One finding of a practice's last audit run, numbered `n` in the audit's order. `key` is
    the review's (`stepout.domain.reviews.finding_key`); `start_us`, `week` (the Monday of the
    session's start in the practice's time zone), `room` and `reason` (of the exit,
    `unclassified` for none) are copied from the records so that the chart groups one table."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_practice_start", "practice", "start_us"),
        Index("ix_findings_practice_key", "practice", "key"),
    )

    practice: Mapped[str] = mapped_column(Name, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(Name)
    rule: Mapped[str] = mapped_column(Name)
    severity: Mapped[str] = mapped_column(String(32))
    session: Mapped[str | None] = mapped_column(Name)
    exit: Mapped[str | None] = mapped_column(Name)
    therapist: Mapped[str | None] = mapped_column(Name)
    room: Mapped[str | None] = mapped_column(Name)
    reason: Mapped[str | None] = mapped_column(String(32))
    start_us: Mapped[int | None] = mapped_column(BigInteger)
    week: Mapped[str | None] = mapped_column(String(32))  # ISO date of the Monday
    message: Mapped[str] = mapped_column(Text)


# The dashboard's rollup (migration 0010, `stepout.adapters.db.rollup`): projections too,
# recomputed from the sessions and exits by the projection.


class DashboardDayRow(Base):
    """Ended sessions per practice-local day (of their start), therapist and room, counted by
    billing status."""

    __tablename__ = "dashboard_days"
    # Stored in key order on SQLite: a period's rows are read in one sweep. No index by
    # therapist: a therapist's period is its full weeks (`dashboard_weeks`) and a few edge days.
    __table_args__ = ({"sqlite_with_rowid": False},)

    practice: Mapped[str] = mapped_column(Name, primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    therapist: Mapped[str] = mapped_column(Name, primary_key=True)
    room: Mapped[str] = mapped_column(Name, primary_key=True)
    supported: Mapped[int] = mapped_column(BigInteger)
    undercoded: Mapped[int] = mapped_column(BigInteger)
    unsupported: Mapped[int] = mapped_column(BigInteger)
    not_billed: Mapped[int] = mapped_column(BigInteger)


class DashboardWeekRow(Base):
    """`dashboard_days` summed by ISO week (`week`: its Monday, a local day number): the full
    weeks of a long period are read here, its edge days from `dashboard_days`."""

    __tablename__ = "dashboard_weeks"
    __table_args__ = ({"sqlite_with_rowid": False},)  # as dashboard_days

    practice: Mapped[str] = mapped_column(Name, primary_key=True)
    week: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    therapist: Mapped[str] = mapped_column(Name, primary_key=True)
    room: Mapped[str] = mapped_column(Name, primary_key=True)
    supported: Mapped[int] = mapped_column(BigInteger)
    undercoded: Mapped[int] = mapped_column(BigInteger)
    unsupported: Mapped[int] = mapped_column(BigInteger)
    not_billed: Mapped[int] = mapped_column(BigInteger)


class DashboardExitRow(Base):
    """One row per exit of an ended session, with its session's day, therapist, room and
    billing status: the dashboard's exit figures without a join."""

    __tablename__ = "dashboard_exits"
    __table_args__ = ({"sqlite_with_rowid": False},)  # as dashboard_days

    practice: Mapped[str] = mapped_column(Name, primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    therapist: Mapped[str] = mapped_column(Name, primary_key=True)
    exit_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    room: Mapped[str] = mapped_column(Name)
    session_pk: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(32))
    duration_us: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(32))
