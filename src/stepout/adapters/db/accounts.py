"""The Accounts port on SQL: users, API tokens, rooms and their display tokens, browser
sessions, and each practice's help text for its room displays. Secrets arrive hashed."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update

from stepout.adapters.db.queries import OnConnection
from stepout.adapters.db.tables import (
    ApiTokenRow,
    PracticeSettingsRow,
    RoomRow,
    RoomTokenRow,
    UserRow,
    WebSessionRow,
)
from stepout.domain.accounts import DEFAULT_HELP, HelpText, Room, User
from stepout.domain.instants import Instant
from stepout.services.ports import WebSession

U = UserRow.__table__.c
T = ApiTokenRow.__table__.c
R = RoomRow.__table__.c
RT = RoomTokenRow.__table__.c
W = WebSessionRow.__table__.c
PS = PracticeSettingsRow.__table__.c

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
            select(*_USER, W.csrf, W.created_us, W.seen_us)
            .join_from(WebSessionRow, UserRow, W.user == U.id)
            .where(W.token_hash == token_hash, W.ended_us.is_(None), U.disabled.is_(False))
        )
        row = self._conn.execute(stmt).first()
        if row is None:
            return None

        return WebSession(_user(row[:5]), csrf=row[5], created=row[6], seen=row[7])

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
        self._conn.execute(
            update(WebSessionRow).where(W.user == user_id, W.ended_us.is_(None)).values(ended_us=at)
        )
