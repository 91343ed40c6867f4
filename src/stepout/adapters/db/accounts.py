"""The Accounts port on SQL: users, API tokens, rooms and their display tokens, browser
sessions, each practice's help text for its room displays, and staff authentication (the
second step of a sign-in, TOTP factors, recovery codes, throttling, the demo's waiver).
Secrets arrive hashed or sealed."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from stepout.adapters.db.queries import OnConnection
from stepout.adapters.db.tables import (
    ApiTokenRow,
    LoginFailureRow,
    MfaFactorRow,
    MfaWaiverRow,
    PendingSignInRow,
    PracticeSettingsRow,
    RecoveryCodeRow,
    RoomRow,
    RoomTokenRow,
    UserRow,
    WebSessionRow,
)
from stepout.domain.accounts import DEFAULT_HELP, HelpText, Room, User
from stepout.domain.instants import Instant
from stepout.services.ports import MfaFactor, WebSession

U = UserRow.__table__.c
T = ApiTokenRow.__table__.c
R = RoomRow.__table__.c
RT = RoomTokenRow.__table__.c
W = WebSessionRow.__table__.c
PS = PracticeSettingsRow.__table__.c
P = PendingSignInRow.__table__.c
F = MfaFactorRow.__table__.c
RC = RecoveryCodeRow.__table__.c
LF = LoginFailureRow.__table__.c
MW = MfaWaiverRow.__table__.c

_USER = (U.id, U.practice, U.username, U.role, U.disabled)


def _user(row: Sequence[Any]) -> User:
    return User(row[0], row[1], row[2], row[3], bool(row[4]))


class SqlAccounts(OnConnection):
    """The accounts' tables, on the unit of work's connection."""

    # Practices' help text

    def help_text(self, practice: str) -> HelpText:
        row = self._conn.execute(
            select(PS.call_button, PS.reception, PS.emergency).where(PS.practice == practice)
        ).first()
        return DEFAULT_HELP if row is None else HelpText(row[0], row[1], row[2])

    def set_help_text(self, practice: str, help_text: HelpText) -> None:
        values = {
            "call_button": help_text.call_button,
            "reception": help_text.reception,
            "emergency": help_text.emergency,
        }
        done = self._conn.execute(
            update(PracticeSettingsRow).where(PS.practice == practice).values(**values)
        )
        if done.rowcount == 0:
            self._conn.execute(insert(PracticeSettingsRow).values(practice=practice, **values))

    # Users

    def add_user(self, user: User, password_hash: str | None, at: Instant) -> None:
        self._conn.execute(
            insert(UserRow).values(
                id=user.id,
                practice=user.practice,
                username=user.username,
                role=user.role,
                password_hash=password_hash,
                created_us=at,
                disabled=user.disabled,
            )
        )

    def user(self, user_id: str) -> User | None:
        row = self._conn.execute(select(*_USER).where(U.id == user_id)).first()
        return None if row is None else _user(row)

    def user_by_username(self, username: str) -> tuple[User, str | None] | None:
        row = self._conn.execute(
            select(*_USER, U.password_hash).where(U.username == username)
        ).first()
        return None if row is None else (_user(row[:5]), row[5])

    def users(self, practice: str) -> list[User]:
        stmt = select(*_USER).where(U.practice == practice).order_by(U.username)
        return [_user(r) for r in self._conn.execute(stmt)]

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._conn.execute(
            update(UserRow).where(U.id == user_id).values(password_hash=password_hash)
        )

    def set_disabled(self, user_id: str, disabled: bool) -> None:
        self._conn.execute(update(UserRow).where(U.id == user_id).values(disabled=disabled))

    # API tokens

    def add_api_token(self, token_hash: str, token_id: str, user_id: str, at: Instant) -> None:
        self._conn.execute(
            insert(ApiTokenRow).values(
                token_hash=token_hash, id=token_id, user=user_id, created_us=at, revoked_us=None
            )
        )

    def user_of_api_token(self, token_hash: str) -> User | None:
        """The token's user, unless the token is revoked or the user disabled."""
        stmt = (
            select(*_USER)
            .join_from(ApiTokenRow, UserRow, T.user == U.id)
            .where(T.token_hash == token_hash, T.revoked_us.is_(None), U.disabled.is_(False))
        )
        row = self._conn.execute(stmt).first()
        return None if row is None else _user(row)

    def revoke_api_token(self, token_id: str, at: Instant) -> bool:
        done = self._conn.execute(
            update(ApiTokenRow)
            .where(T.id == token_id, T.revoked_us.is_(None))
            .values(revoked_us=at)
        )
        return done.rowcount > 0

    # Rooms

    def add_room(self, room: Room) -> None:
        self._conn.execute(
            insert(RoomRow).values(practice=room.practice, id=room.id, name=room.name)
        )

    def room(self, practice: str, room_id: str) -> Room | None:
        row = self._conn.execute(
            select(R.practice, R.id, R.name).where(R.practice == practice, R.id == room_id)
        ).first()
        return None if row is None else Room(row[0], row[1], row[2])

    def rooms(self, practice: str | None = None, room_id: str | None = None) -> list[Room]:
        stmt = select(R.practice, R.id, R.name).order_by(R.practice, R.id)
        if practice is not None:
            stmt = stmt.where(R.practice == practice)
        if room_id is not None:
            stmt = stmt.where(R.id == room_id)
        return [Room(r[0], r[1], r[2]) for r in self._conn.execute(stmt)]

    def add_room_token(self, token_hash: str, room: Room, at: Instant) -> None:
        self._conn.execute(
            insert(RoomTokenRow).values(
                token_hash=token_hash,
                practice=room.practice,
                room=room.id,
                created_us=at,
                revoked_us=None,
            )
        )

    def room_of_token(self, token_hash: str) -> Room | None:
        stmt = (
            select(R.practice, R.id, R.name)
            .join_from(RoomTokenRow, RoomRow, (RT.practice == R.practice) & (RT.room == R.id))
            .where(RT.token_hash == token_hash, RT.revoked_us.is_(None))
        )
        row = self._conn.execute(stmt).first()
        return None if row is None else Room(row[0], row[1], row[2])

    def revoke_room_tokens(self, room: Room, at: Instant) -> int:
        done = self._conn.execute(
            update(RoomTokenRow)
            .where(RT.practice == room.practice, RT.room == room.id, RT.revoked_us.is_(None))
            .values(revoked_us=at)
        )
        return done.rowcount

    # Browser sessions

    def add_web_session(self, token_hash: str, user_id: str, csrf: str, at: Instant) -> None:
        self._conn.execute(
            insert(WebSessionRow).values(
                token_hash=token_hash,
                user=user_id,
                csrf=csrf,
                created_us=at,
                seen_us=at,
                ended_us=None,
            )
        )

    def web_session(self, token_hash: str) -> WebSession | None:
        """The session and its user, unless it has ended or the user is disabled."""
        stmt = (
            select(*_USER, W.csrf, W.created_us, W.seen_us, MW.practice)
            .join_from(WebSessionRow, UserRow, W.user == U.id)
            .outerjoin(MfaWaiverRow, MW.practice == U.practice)
            .where(W.token_hash == token_hash, W.ended_us.is_(None), U.disabled.is_(False))
        )
        row = self._conn.execute(stmt).first()
        if row is None:
            return None

        return WebSession(
            _user(row[:5]), csrf=row[5], created=row[6], seen=row[7], mfa_waived=row[8] is not None
        )

    def touch_web_session(self, token_hash: str, at: Instant) -> None:
        self._conn.execute(
            update(WebSessionRow).where(W.token_hash == token_hash).values(seen_us=at)
        )

    def end_web_session(self, token_hash: str, at: Instant) -> None:
        self._conn.execute(
            update(WebSessionRow)
            .where(W.token_hash == token_hash, W.ended_us.is_(None))
            .values(ended_us=at)
        )

    def end_web_sessions_of(self, user_id: str, at: Instant) -> None:
        """End every browser session of the user, the half-signed-in ones too."""
        self._conn.execute(
            update(WebSessionRow).where(W.user == user_id, W.ended_us.is_(None)).values(ended_us=at)
        )
        self._conn.execute(
            update(PendingSignInRow)
            .where(P.user == user_id, P.ended_us.is_(None))
            .values(ended_us=at)
        )

    # The second step of a sign-in: a browser that gave the right password

    def add_pending_sign_in(self, token_hash: str, user_id: str, csrf: str, at: Instant) -> None:
        self._conn.execute(
            insert(PendingSignInRow).values(
                token_hash=token_hash, user=user_id, csrf=csrf, created_us=at, ended_us=None
            )
        )

    def pending_sign_in(self, token_hash: str) -> WebSession | None:
        """The half-signed-in browser and its user, unless it has ended or the user is
        disabled (`seen` is when it began)."""
        stmt = (
            select(*_USER, P.csrf, P.created_us)
            .join_from(PendingSignInRow, UserRow, P.user == U.id)
            .where(P.token_hash == token_hash, P.ended_us.is_(None), U.disabled.is_(False))
        )
        row = self._conn.execute(stmt).first()
        if row is None:
            return None
        return WebSession(_user(row[:5]), csrf=row[5], created=row[6], seen=row[6])

    def end_pending_sign_in(self, token_hash: str, at: Instant) -> None:
        self._conn.execute(
            update(PendingSignInRow)
            .where(P.token_hash == token_hash, P.ended_us.is_(None))
            .values(ended_us=at)
        )

    # TOTP factors and recovery codes

    def mfa_factor(self, user_id: str) -> MfaFactor | None:
        row = self._conn.execute(
            select(F.secret, F.confirmed_us, F.last_step).where(F.user == user_id)
        ).first()
        return None if row is None else MfaFactor(row[0], row[1] is not None, row[2])

    def set_mfa_factor(self, user_id: str, sealed: str, at: Instant) -> None:
        """A new, unconfirmed factor (replacing any other the user had)."""
        self._conn.execute(delete(MfaFactorRow).where(F.user == user_id))
        self._conn.execute(
            insert(MfaFactorRow).values(
                user=user_id, secret=sealed, created_us=at, confirmed_us=None, last_step=None
            )
        )

    def confirm_mfa_factor(self, user_id: str, at: Instant) -> None:
        self._conn.execute(update(MfaFactorRow).where(F.user == user_id).values(confirmed_us=at))

    def use_mfa_step(self, user_id: str, step: int) -> bool:
        """Record `step` as used, unless a step as late or later already was (a replay). One
        statement, so that two workers cannot both accept one code."""
        done = self._conn.execute(
            update(MfaFactorRow)
            .where(F.user == user_id, (F.last_step.is_(None)) | (F.last_step < step))
            .values(last_step=step)
        )
        return done.rowcount == 1

    def drop_mfa(self, user_id: str) -> bool:
        """Remove the user's factor and recovery codes; whether there was a factor."""
        self._conn.execute(delete(RecoveryCodeRow).where(RC.user == user_id))
        done = self._conn.execute(delete(MfaFactorRow).where(F.user == user_id))
        return done.rowcount > 0

    def set_recovery_codes(self, user_id: str, code_hashes: Sequence[str], at: Instant) -> None:
        """The user's recovery codes (replacing any earlier ones)."""
        self._conn.execute(delete(RecoveryCodeRow).where(RC.user == user_id))
        if code_hashes:
            self._conn.execute(
                insert(RecoveryCodeRow),
                [
                    {"code_hash": h, "user": user_id, "created_us": at, "used_us": None}
                    for h in code_hashes
                ],
            )

    def use_recovery_code(self, user_id: str, code_hash: str, at: Instant) -> bool:
        """Spend the code: True once, for an unused code of this user."""
        done = self._conn.execute(
            update(RecoveryCodeRow)
            .where(RC.code_hash == code_hash, RC.user == user_id, RC.used_us.is_(None))
            .values(used_us=at)
        )
        return done.rowcount == 1

    # Throttling

    def add_login_failure(self, failure_id: str, subject: str, at: Instant) -> None:
        self._conn.execute(insert(LoginFailureRow).values(id=failure_id, subject=subject, at_us=at))

    def login_failures_since(self, subject: str, since: Instant) -> int:
        stmt = (
            select(func.count())
            .select_from(LoginFailureRow)
            .where(LF.subject == subject, LF.at_us > since)
        )
        return int(self._conn.execute(stmt).scalar_one())

    def clear_login_failures(self, subject: str) -> None:
        self._conn.execute(delete(LoginFailureRow).where(LF.subject == subject))

    def expire_login_failures(self, before: Instant) -> None:
        self._conn.execute(delete(LoginFailureRow).where(LF.at_us <= before))

    # The demo practice's waiver of the second factor

    def waive_mfa(self, practice: str, at: Instant) -> None:
        if not self.mfa_waived(practice):
            self._conn.execute(insert(MfaWaiverRow).values(practice=practice, created_us=at))

    def mfa_waived(self, practice: str) -> bool:
        found = self._conn.execute(select(MW.practice).where(MW.practice == practice)).first()
        return found is not None

    def waived_practices(self) -> list[str]:
        return list(self._conn.execute(select(MW.practice).order_by(MW.practice)).scalars())
