"""What the service layer needs from storage. The SQL adapter and the in-memory fake both
provide it; services depend on these protocols only.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Protocol, Self

from stepout.domain.accounts import HelpText, Room, User
from stepout.domain.bundle import SessionBundle as SessionBundle
from stepout.domain.events import Event
from stepout.domain.instants import Instant
from stepout.domain.practice import Practice
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.schedule import Appointment
from stepout.services.audit import AuditTrail


@dataclass(frozen=True, slots=True)
class Selection:
    """Which sessions a query covers. Dates are read in each practice's time zone and both
    ends are inclusive; None means unbounded. Only ended sessions are audited and billed."""

    date_from: date | None = None
    date_to: date | None = None
    practice: str | None = None
    therapist: str | None = None


class Ledger(Protocol):
    def append(self, events: Sequence[Event]) -> None:
        """Append to the hash-chained log and update the projections, in this unit of work.
        Raises `stepout.domain.events.EvolveError` if an event does not apply: at once, or, for
        a bulk append that storage writes in the background, at the next read, append or
        commit of this unit of work, with the append undone either way."""


class Records(Protocol):
    def practice(self, practice_id: str) -> Practice | None: ...
    def practices(self, ids: Iterable[str]) -> dict[str, Practice]: ...
    def session(self, session_id: str) -> Session | None: ...
    def sessions(self, ids: Iterable[str]) -> dict[str, Session]: ...
    def exit(self, exit_id: str) -> Exit | None: ...
    def exits(self, ids: Iterable[str]) -> dict[str, Exit]: ...
    def exits_of_session(self, session_id: str) -> list[Exit]: ...
    def concern(self, concern_id: str) -> Concern | None: ...
    def concerns(self, ids: Iterable[str]) -> dict[str, Concern]: ...
    def concerns_of_session(self, session_id: str) -> list[Concern]: ...
    def appointment(self, appointment_id: str) -> Appointment | None: ...
    def appointments(self, ids: Iterable[str]) -> dict[str, Appointment]: ...

    def appointments_of_therapist(
        self, practice: str, therapist: str, starts_from: Instant, starts_before: Instant
    ) -> list[tuple[Appointment, bool]]:
        """The therapist's appointments planned to start in [starts_from, starts_before), by
        start, each with whether it has started (a session with its id exists)."""

    def open_exit_of_therapist(self, practice: str, therapist: str) -> Exit | None:
        """The therapist's exit with no return, in a session still in progress, if any."""

    def session_in_room(self, practice: str, room: str) -> Session | None:
        """The room's session in progress (the latest started, should there be two)."""

    def sessions_in_progress(self, practice: str) -> list[Session]:
        """The practice's sessions with no end yet, by start (what the presence service
        watches)."""

    def last_ended_in_room(self, practice: str, room: str, ended_since: Instant) -> Session | None:
        """The room's session that ended last, at or after `ended_since`, if any."""

    def sessions_of_therapist(
        self, practice: str, therapist: str, started_from: Instant, started_before: Instant
    ) -> list[Session]:
        """The therapist's sessions started in [started_from, started_before), by start."""

    def sessions_of_practice(
        self, practice: str, started_from: Instant, started_before: Instant
    ) -> list[Session]:
        """The practice's sessions started in [started_from, started_before), by start."""

    def exits_to_sign(self, practice: str, therapist: str) -> list[Exit]:
        """The therapist's exits that have a return but no signature, oldest first."""

    def open_concerns(self, practice: str, limit: int) -> list[Concern]:
        """The practice's concerns not yet acknowledged, oldest first, at most `limit`."""

    def bundles(self, selection: Selection) -> Iterator[SessionBundle]:
        """Ended sessions in the selection with their exits and concerns, streamed in
        (start, id) order; memory stays bounded by one chunk, not by the selection."""

    def bundles_to_judge(
        self,
        selection: Selection,
        billing_floor: Callable[[Sequence[str]], int] | None,
        *,
        count_therapists: bool = True,
    ) -> tuple[Iterator[SessionBundle], dict[str, tuple[int, int]]]:
        """What an audit must read: the bundles of the selection's ended sessions that have an
        exit or a concern, or (with `billing_floor`) fewer gross minutes than
        `billing_floor(billed_codes)`; and (unless `count_therapists` is false, then {}), over the
        whole selection, each therapist's count of sessions and of sessions with an exit.
        Every other session yields no finding."""

    def dump(self) -> Iterator[Session | Exit | Concern]:
        """Every stored record, sessions before the exits and concerns of each, for export."""


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser: its user, the CSRF token its forms carry, and its times."""

    user: User
    csrf: str
    created: Instant
    seen: Instant
    mfa_waived: bool = False  # the user's practice signs in without a second factor (the demo)


@dataclass(frozen=True, slots=True)
class MfaFactor:
    """A user's TOTP factor as stored: the sealed secret, whether a first code confirmed it,
    and the last time step a code was accepted for."""

    sealed: str
    confirmed: bool
    last_step: int | None


class Accounts(Protocol):
    """Staff accounts, tokens (stored as hashes), rooms and the displays' help text."""

    def help_text(self, practice: str) -> HelpText: ...
    def set_help_text(self, practice: str, help_text: HelpText) -> None: ...
    def add_user(self, user: User, password_hash: str | None, at: Instant) -> None: ...
    def user(self, user_id: str) -> User | None: ...
    def user_by_username(self, username: str) -> tuple[User, str | None] | None: ...
    def users(self, practice: str) -> list[User]: ...
    def set_password_hash(self, user_id: str, password_hash: str) -> None: ...
    def set_disabled(self, user_id: str, disabled: bool) -> None: ...
    def add_api_token(self, token_hash: str, token_id: str, user_id: str, at: Instant) -> None: ...
    def user_of_api_token(self, token_hash: str) -> User | None: ...
    def revoke_api_token(self, token_id: str, at: Instant) -> bool: ...
    def add_room(self, room: Room) -> None: ...
    def room(self, practice: str, room_id: str) -> Room | None: ...
    def rooms(self, practice: str | None = None, room_id: str | None = None) -> list[Room]: ...
    def add_room_token(self, token_hash: str, room: Room, at: Instant) -> None: ...
    def room_of_token(self, token_hash: str) -> Room | None: ...
    def revoke_room_tokens(self, room: Room, at: Instant) -> int: ...
    def add_web_session(self, token_hash: str, user_id: str, csrf: str, at: Instant) -> None: ...
    def web_session(self, token_hash: str) -> WebSession | None: ...
    def touch_web_session(self, token_hash: str, at: Instant) -> None: ...
    def end_web_session(self, token_hash: str, at: Instant) -> None: ...
    def end_web_sessions_of(self, user_id: str, at: Instant) -> None:
        """End every browser session of the user, the half-signed-in ones too."""

    # Staff authentication: the second step of a sign-in, TOTP factors, recovery codes,
    # throttling and the demo's waiver (`stepout.services.signin`).
    def add_pending_sign_in(
        self, token_hash: str, user_id: str, csrf: str, at: Instant
    ) -> None: ...
    def pending_sign_in(self, token_hash: str) -> WebSession | None: ...
    def end_pending_sign_in(self, token_hash: str, at: Instant) -> None: ...
    def mfa_factor(self, user_id: str) -> MfaFactor | None: ...
    def set_mfa_factor(self, user_id: str, sealed: str, at: Instant) -> None: ...
    def confirm_mfa_factor(self, user_id: str, at: Instant) -> None: ...
    def use_mfa_step(self, user_id: str, step: int) -> bool:
        """Record `step` as used, unless a step as late or later already was (a replay)."""

    def drop_mfa(self, user_id: str) -> bool: ...
    def set_recovery_codes(self, user_id: str, code_hashes: Sequence[str], at: Instant) -> None: ...
    def use_recovery_code(self, user_id: str, code_hash: str, at: Instant) -> bool: ...
    def add_login_failure(self, failure_id: str, subject: str, at: Instant) -> None: ...
    def login_failures_since(self, subject: str, since: Instant) -> int: ...
    def clear_login_failures(self, subject: str) -> None: ...
    def expire_login_failures(self, before: Instant) -> None: ...
    def waive_mfa(self, practice: str, at: Instant) -> None: ...
    def mfa_waived(self, practice: str) -> bool: ...
    def waived_practices(self) -> list[str]: ...


class UnitOfWork(Protocol):
    """One transaction. Leaving the `with` block without `commit()` rolls everything back."""

    @property
    def records(self) -> Records: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def audit(self) -> AuditTrail:
        """The audit trail, appended in this transaction (a writing unit of work's)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


class AccountsUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that also reaches the accounts (SQL storage)."""

    @property
    def accounts(self) -> Accounts: ...
