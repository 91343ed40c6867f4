"""What every decision shares: the error, the facts read, the decision made, and checks."""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

from stepout.domain.commands import (
    Command,
)
from stepout.domain.events import Event
from stepout.domain.instants import Instant, format_instant
from stepout.domain.practice import Practice
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.schedule import Appointment


class ProtocolError(Exception):
    """A command the protocol refuses: `code` is stable, `message` is for the therapist."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Facts:
    """What a decision reads, loaded by the service layer (None: not found)."""

    practice: Practice | None = None
    session: Session | None = None  # the session named, or the one owning the exit/concern
    exit: Exit | None = None
    concern: Concern | None = None
    open_exit: Exit | None = None  # the session's therapist's open exit, if any (declare)
    exits: tuple[Exit, ...] = ()  # the session's exits (end session)
    appointment: Appointment | None = None  # the appointment a session starts from


@dataclass(frozen=True, slots=True)
class Decision:
    """The record a command is about (`entity`, `subject`) and the events it appends."""

    entity: str
    subject: str
    events: tuple[Event, ...] = ()


def not_found(what: str) -> ProtocolError:
    return ProtocolError("not-found", f"No such {what} in this practice.")


def new_event(cmd: Command, kind: str, subject: str, at: Instant, **data: Any) -> Event:
    return Event(kind, cmd.practice, subject, at, data, cmd.actor)


def ts(instant: Instant) -> str:
    return format_instant(instant)


def blank(text: str | None) -> bool:
    return not isinstance(text, str) or not text.strip()


def required(what: str, text: str | None) -> None:
    if blank(text):
        raise ProtocolError("missing-value", f"The {what} is required.")


_CHOICES: Final = {  # code suffix -> what the therapist reads
    "modality": "That is not a known modality (in person or telehealth).",
    "code": "That is not a CPT code Stepout knows.",
    "reason": "That is not a known reason for stepping out.",
    "client-informed": "Say whether the client was told before leaving or after the return.",
    "safeguard": "That is not a known safeguard.",
    "ems-decision": "Say whether emergency services were called or are not needed.",
}


def choice(what: str, value: str | None, allowed: Collection[str]) -> None:
    if value not in allowed:
        raise ProtocolError(f"unknown-{what}", _CHOICES[what])


def not_before(at: Instant, *earlier: Instant | None) -> None:
    if any(t is not None and at < t for t in earlier):
        raise ProtocolError(
            "clock-behind", "The clock reads earlier than a time already recorded; check it."
        )


def own_session(cmd: Command, facts: Facts) -> Session:
    s = facts.session
    if s is None or s.practice != cmd.practice:
        raise not_found("session")
    return s


def own_exit(cmd: Command, facts: Facts) -> tuple[Exit, Session]:
    x, s = facts.exit, facts.session
    if x is None or s is None or x.session != s.id or s.practice != cmd.practice:
        raise not_found("exit")
    return x, s


def own_concern(cmd: Command, facts: Facts) -> tuple[Concern, Session]:
    c, s = facts.concern, facts.session
    if c is None or s is None or c.session != s.id or s.practice != cmd.practice:
        raise not_found("concern")
    return c, s
