"""Account commands: practices, users, API tokens, rooms and room tokens, sign-in and browser
sessions. Each runs in one unit of work; tokens are returned once and stored only hashed. The
two steps of signing in to the pages (password, then the second factor) are in `signin`."""

import time
from collections.abc import Callable
from typing import Final, TypeVar

from stepout.crypto.keys import Keys
from stepout.domain.accounts import ROLES, HelpText, Room, User
from stepout.domain.events import Event
from stepout.domain.instants import MICROS_PER_MINUTE, Instant, now
from stepout.services import credentials, ids
from stepout.services.ports import AccountsUnitOfWork, WebSession
from stepout.services.signin import SignIn as SignIn
from stepout.services.signin import SignInService

IDLE_TIMEOUT_US: Final = 30 * MICROS_PER_MINUTE
ABSOLUTE_TIMEOUT_US: Final = 12 * 60 * MICROS_PER_MINUTE
TOUCH_EVERY_US: Final = MICROS_PER_MINUTE  # how stale `seen` may get before a request refreshes it

API_TOKEN_ID: Final = "tok_"
AUTH_CACHE_SECONDS: Final = 2.0
AUTH_CACHE_SIZE: Final = 10_000

T = TypeVar("T")


class AccountError(ValueError):
    """A refused account command; the message names what and why (never a secret)."""


class AccountService:
    """`uow` makes units of work: `uow()` for writing, `uow(read_only=True)` for lookups
    (authentication on every request must not queue behind the writers). `keys` (the key
    file's) seal the TOTP secrets: the second step of signing in needs them (`signin`)."""

    def __init__(
        self,
        uow: Callable[..., AccountsUnitOfWork],
        clock: Callable[[], Instant] = now,
        *,
        keys: Keys | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.signin = SignInService(uow, clock, keys)
        self._forget_tokens()

    def _reader(self) -> AccountsUnitOfWork:
        return self._uow(read_only=True)

    # Tokens this process found valid in the last AUTH_CACHE_SECONDS: every API request and
    # every display stream's heartbeat authenticates, and most come from the same few tokens.
    # A token revoked or a user disabled through this process is forgotten at once; through
    # another process (the CLI, another worker), it keeps working here for at most that long.
    _known_users: dict[str, tuple[float, User]]
    _known_rooms: dict[str, tuple[float, Room]]

    def _forget_tokens(self) -> None:
        self._known_users = {}
        self._known_rooms = {}

    def add_practice(
        self, practice_id: str, name: str, timezone: str = "UTC", help_text: HelpText | None = None
    ) -> None:
        if not practice_id.strip() or not name.strip():
            raise AccountError("A practice needs an id and a name.")
        _check_zone(timezone)
        with self._uow() as uow:
            if uow.records.practice(practice_id) is not None:
                raise AccountError(f"practice {practice_id} already exists")
            at = self._clock()
            data = {"name": name, "timezone": timezone}
            uow.ledger.append(
                [Event("practice.created", practice_id, practice_id, at, data, "admin")]
            )
            uow.accounts.set_help_text(practice_id, help_text or HelpText())
            uow.commit()

    def set_help_text(self, practice_id: str, help_text: HelpText) -> None:
        with self._uow() as uow:
            _require_practice(uow, practice_id)
            uow.accounts.set_help_text(practice_id, help_text)
            uow.commit()

    def add_user(
        self,
        username: str,
        practice: str,
        role: str,
        password: str | None,
        *,
        user_id: str | None = None,
    ) -> User:
        """A new account. A therapist's `user_id` is the therapist id of their sessions (the
        username unless given)."""
        if role not in ROLES:
            raise AccountError(f"role: expected one of {', '.join(ROLES)}")
        if not username.strip() or any(c.isspace() for c in username):
            raise AccountError("username: a username is one word with no spaces")
        if password is not None:
            try:
                credentials.check_password_strength(password, username)
            except credentials.WeakPassword as e:
                raise AccountError(f"password: {e}") from None
        user = User(user_id or username, practice, username, role)  # type: ignore[arg-type]
        with self._uow() as uow:
            _require_practice(uow, practice)
            if uow.accounts.user_by_username(username) is not None:
                raise AccountError(f"username: {username} is taken")
            if uow.accounts.user(user.id) is not None:
                raise AccountError(f"id: {user.id} is taken")
            hashed = None if password is None else credentials.hash_password(password)
            uow.accounts.add_user(user, hashed, self._clock())
            uow.commit()
        return user

    def create_api_token(self, username: str) -> tuple[str, str]:
        """A new API token for `username`: (token id, token). The token is shown once."""
        token = credentials.new_token(credentials.API_TOKEN)
        token_id = ids.new_id(API_TOKEN_ID)
        with self._uow() as uow:
            found = uow.accounts.user_by_username(username)
            if found is None:
                raise AccountError(f"no user {username}")
            uow.accounts.add_api_token(
                credentials.token_hash(token), token_id, found[0].id, self._clock()
            )
            uow.commit()
        return token_id, token

    def revoke_api_token(self, token_id: str) -> None:
        with self._uow() as uow:
            if not uow.accounts.revoke_api_token(token_id, self._clock()):
                raise AccountError(f"no live API token {token_id}")
            uow.commit()
        self._forget_tokens()

    def known_user(self, token: str) -> User | None:
        """The token's user if this process found it valid moments ago (no I/O), else None."""
        hit = self._known_users.get(token)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def user_of_api_token(self, token: str) -> User | None:
        known = self.known_user(token)
        if known is not None:
            return known
        with self._reader() as uow:
            user = uow.accounts.user_of_api_token(credentials.token_hash(token))
        if user is not None:
            _remember(self._known_users, token, user)
        return user

    def add_room(self, room_id: str, practice: str, name: str) -> Room:
        if not room_id.strip() or not name.strip():
            raise AccountError("A room needs an id and a name.")
        room = Room(practice, room_id, name)
        with self._uow() as uow:
            _require_practice(uow, practice)
            if uow.accounts.room(practice, room_id) is not None:
                raise AccountError(f"room {room_id} already exists in practice {practice}")
            uow.accounts.add_room(room)
            uow.commit()
        return room

    def create_room_token(self, room_id: str, practice: str | None = None) -> tuple[Room, str]:
        """A new display token for the room (earlier tokens stay valid until revoked)."""
        token = credentials.new_token(credentials.ROOM_TOKEN)
        with self._uow() as uow:
            room = _one_room(uow, room_id, practice)
            uow.accounts.add_room_token(credentials.token_hash(token), room, self._clock())
            uow.commit()
        return room, token

    def room_of_token(self, token: str) -> Room | None:
        hit = self._known_rooms.get(token)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with self._reader() as uow:
            room = uow.accounts.room_of_token(credentials.token_hash(token))
        if room is not None:
            _remember(self._known_rooms, token, room)
        return room

    def sign_in(self, username: str, password: str, address: str = "") -> SignIn | None:
        """The password step of signing in (see `SignInService.sign_in`): None for wrong
        credentials, `Throttled` after too many failures; with `second_step` set, the result
        is a pending sign-in that still owes its second factor."""
        return self.signin.sign_in(username, password, address)

    def web_session(self, token: str) -> WebSession | None:
        """The live session for a cookie value: None once it has ended, been idle 30 minutes
        or lasted 12 hours (then it is ended for good)."""
        hashed = credentials.token_hash(token)
        at = self._clock()
        with self._reader() as uow:
            found = uow.accounts.web_session(hashed)
        if found is None:
            return None
        expired = at - found.seen > IDLE_TIMEOUT_US or at - found.created >= ABSOLUTE_TIMEOUT_US
        if not expired and at - found.seen <= TOUCH_EVERY_US:
            return found  # most requests: a read, no write
        with self._uow() as uow:
            if expired:
                uow.accounts.end_web_session(hashed, at)
            else:
                uow.accounts.touch_web_session(hashed, at)
            uow.commit()
        return None if expired else found

    def sign_out(self, token: str) -> None:
        with self._uow() as uow:
            uow.accounts.end_web_session(credentials.token_hash(token), self._clock())
            uow.commit()

    def set_password(self, username: str, password: str) -> None:
        """A new password; every browser session of the account ends."""
        try:
            credentials.check_password_strength(password, username)
        except credentials.WeakPassword as e:
            raise AccountError(f"password: {e}") from None
        with self._uow() as uow:
            found = uow.accounts.user_by_username(username)
            if found is None:
                raise AccountError(f"no user {username}")
            uow.accounts.set_password_hash(found[0].id, credentials.hash_password(password))
            uow.accounts.end_web_sessions_of(found[0].id, self._clock())
            uow.commit()

    def reset_mfa(self, username: str) -> bool:
        """Drop the account's second factor and recovery codes and end its browser sessions:
        it enrols again at its next sign-in. Whether it had a factor."""
        with self._uow() as uow:
            found = uow.accounts.user_by_username(username)
            if found is None:
                raise AccountError(f"no user {username}")
            user = found[0]
            had = uow.accounts.drop_mfa(user.id)
            uow.accounts.end_web_sessions_of(user.id, self._clock())
            uow.commit()
        return had

    # Reading and switching off (the CLI's `list`, `disable` and `revoke` commands)

    def help_text(self, practice_id: str) -> HelpText:
        with self._reader() as uow:
            _require_practice(uow, practice_id)
            return uow.accounts.help_text(practice_id)

    def user(self, username: str) -> User | None:
        with self._reader() as uow:
            found = uow.accounts.user_by_username(username)
        return None if found is None else found[0]

    def users(self, practice_id: str) -> list[User]:
        with self._reader() as uow:
            _require_practice(uow, practice_id)
            return uow.accounts.users(practice_id)

    def set_disabled(self, username: str, disabled: bool) -> User:
        """Disable (or enable again) an account: a disabled one cannot sign in, and its
        browser sessions and API tokens stop working at once."""
        with self._uow() as uow:
            found = uow.accounts.user_by_username(username)
            if found is None:
                raise AccountError(f"no user {username}")
            user = found[0]
            uow.accounts.set_disabled(user.id, disabled)
            if disabled:
                uow.accounts.end_web_sessions_of(user.id, self._clock())
            uow.commit()
        self._forget_tokens()
        return User(user.id, user.practice, user.username, user.role, disabled)

    def rooms(self, practice: str | None = None) -> list[Room]:
        with self._reader() as uow:
            if practice is not None:
                _require_practice(uow, practice)
            return uow.accounts.rooms(practice)

    def revoke_room_tokens(self, room_id: str, practice: str | None = None) -> tuple[Room, int]:
        """Revoke every display token of the room (a lost tablet); returns how many."""
        with self._uow() as uow:
            room = _one_room(uow, room_id, practice)
            revoked = uow.accounts.revoke_room_tokens(room, self._clock())
            uow.commit()
        self._forget_tokens()
        return room, revoked


def _remember(known: dict[str, tuple[float, T]], token: str, found: T) -> None:
    if len(known) >= AUTH_CACHE_SIZE:
        known.clear()
    known[token] = (time.monotonic() + AUTH_CACHE_SECONDS, found)


def _one_room(uow: AccountsUnitOfWork, room_id: str, practice: str | None) -> Room:
    """The room `room_id` (of `practice`, which may be left out while the id is unique)."""
    found = uow.accounts.rooms(practice, room_id)
    if not found:
        raise AccountError(f"no room {room_id}")
    if len(found) > 1:
        raise AccountError(f"room {room_id} is in several practices: name the practice")
    return found[0]


def _require_practice(uow: AccountsUnitOfWork, practice: str) -> None:
    if uow.records.practice(practice) is None:
        raise AccountError(f"no practice {practice}")


def _check_zone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AccountError(f"timezone: {name} is not an IANA time zone name") from None
