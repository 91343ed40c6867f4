"""What a rule is, and the plain words its findings use.

A rule is built once per audit from the policy (`build(policy, as_of)`), which turns its
settings into plain local values, and returns a check: a small function the engine calls per
exit, session or concern, returning a `Finding` or None. The checks live in `rules_exit` (one
exit at a time) and `rules_session` (a session, a concern, a therapist's rate of exits).

Messages speak to a supervisor, with numbers, and never repeat free text from the record
(explanations, notes and concerns are health data).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from stepout.domain.instants import (
    MICROS_PER_DAY,
    MICROS_PER_HOUR,
    MICROS_PER_MINUTE,
    MICROS_PER_SECOND,
    Instant,
)
from stepout.domain.records import Concern, Exit, Session
from stepout.policy.findings import Finding

# (exit, its session, the session's end) -> a finding or None
ExitCheck = Callable[[Exit, Session, Instant], Finding | None]
# (session, its end, its exits) -> a finding or None
SessionCheck = Callable[[Session, Instant, Sequence[Exit]], Finding | None]
# (concern, its session) -> a finding or None
ConcernCheck = Callable[[Concern, Session], Finding | None]
# (sessions per therapist, sessions with at least one exit per therapist) -> findings
RateCheck = Callable[[Mapping[str, int], Mapping[str, int]], list[Finding]]

REASON_WORDS: Final[dict[str | None, str]] = {
    "technical": "technical",
    "client_safety": "client-safety",
    "health_emergency": "health-emergency",
    "other": "'other'",
    None: "unclassified",
}
SAFEGUARD_WORDS: Final[dict[str, str]] = {
    "records_secured": "records secured",
    "screen_locked": "screen locked",
    "door_closed": "door closed",
}


def reason_words(reason: str | None) -> str:
    """The reason as an adjective: "technical", "client-safety", ..."""
    return REASON_WORDS.get(reason, str(reason))


def exit_words(reason: str | None) -> str:
    """Start of a sentence about one exit: "Technical exit", "Exit with no reason"."""
    if reason is None:
        return "Exit with no reason"
    words = reason_words(reason)
    return f"{words[0].upper()}{words[1:]} exit" if words[0] != "'" else f"Exit with reason {words}"


def join_words(items: Iterable[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    parts = list(items)
    if len(parts) < 2:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def number(value: float) -> str:
    """A policy number without a needless ".0": 5 -> "5", 2.5 -> "2.5"."""
    return f"{value:g}"


def plural(count: float, unit: str) -> str:
    return f"{number(count)} {unit}" if count == 1 else f"{number(count)} {unit}s"


def span(micros: int) -> str:
    """A duration in the units a reader expects: "40 s", "12 min", "5 min 30 s", "26 h 5 min",
    "4 days 2 h" (rounded down to the smallest unit shown)."""
    if micros < MICROS_PER_MINUTE:
        return f"{micros // MICROS_PER_SECOND} s"
    if micros < MICROS_PER_HOUR:
        minutes, rest = divmod(micros, MICROS_PER_MINUTE)
        seconds = rest // MICROS_PER_SECOND
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    if micros < 3 * MICROS_PER_DAY:
        hours, rest = divmod(micros, MICROS_PER_HOUR)
        minutes = rest // MICROS_PER_MINUTE
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, rest = divmod(micros, MICROS_PER_DAY)
    hours = rest // MICROS_PER_HOUR
    return f"{days} days {hours} h" if hours else f"{days} days"


def to_micros(amount: float, unit: int) -> int:
    """A policy amount (minutes, hours, days: possibly fractional) in whole microseconds."""
    return round(amount * unit)
