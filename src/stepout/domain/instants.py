"""Instants as whole microseconds since the Unix epoch (UTC).

The core does its arithmetic on integers: exact, fast, and free of time-zone traps. Text in
and out of the system is ISO 8601 with an explicit offset.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Instant = int  # microseconds since 1970-01-01T00:00:00Z

MICROS_PER_SECOND = 1_000_000
MICROS_PER_MINUTE = 60 * MICROS_PER_SECOND
MICROS_PER_HOUR = 60 * MICROS_PER_MINUTE
MICROS_PER_DAY = 24 * MICROS_PER_HOUR

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InstantError(ValueError):
    """A timestamp that is not ISO 8601 with an offset."""


def parse_instant(text: str) -> Instant:
    """Parse ISO 8601 text that carries an offset (`Z` or `+hh:mm`) into an instant."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InstantError("not an ISO 8601 timestamp") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InstantError("timestamp has no UTC offset")
    return from_datetime(moment)


def from_datetime(moment: datetime) -> Instant:
    """An aware datetime as an instant."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds


def to_datetime(instant: Instant) -> datetime:
    """An instant as an aware datetime in UTC."""
    return _EPOCH + timedelta(microseconds=instant)


def format_instant(instant: Instant) -> str:
    """ISO 8601 in UTC with an explicit `+00:00` offset; seconds precision when exact."""
    moment = to_datetime(instant)
    spec = "seconds" if moment.microsecond == 0 else "microseconds"
    return moment.isoformat(timespec=spec)


def day_bounds(day: date, zone: str = "UTC") -> tuple[Instant, Instant]:
    """The half-open instant range `[start, end)` of one calendar day in a time zone."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return from_datetime(start), from_datetime(end)


def now() -> Instant:
    return from_datetime(datetime.now(UTC))
