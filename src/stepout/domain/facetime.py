"""Face-to-face time: a session's span minus the therapist's absences, in whole minutes.

Net face-to-face time is the session `[start, end]` minus the union of the exit intervals
clipped to it. An exit that never returned (`returned_at` is None) lasts to the session's end.
Overlapping or duplicated exits count once; the parts of an exit outside the session count not
at all; an exit that ends before it begins (bad data) counts as nothing. Minutes are whole
minutes rounded down, never negative: a session whose end is not after its start lasts 0.

These functions run once per session in an audit of millions, so the common shapes (no exit,
one exit) take a path that neither sorts nor allocates.
"""

from collections.abc import Iterable

from stepout.domain.instants import MICROS_PER_MINUTE, Instant

ExitSpan = tuple[Instant, Instant | None]  # (left_at, returned_at); None: never returned


def gross_minutes(start: Instant, end: Instant) -> int:
    """The session's whole length in whole minutes, rounded down (0 if `end` <= `start`)."""
    span = end - start
    return span // MICROS_PER_MINUTE if span > 0 else 0


def absent_micros(start: Instant, end: Instant, exits: Iterable[ExitSpan]) -> int:
    """Microseconds of `[start, end]` covered by at least one exit.

    Each exit `(left_at, returned_at)` is clipped to the session; `returned_at` None means the
    exit lasts to `end`. The result is the length of the union, so overlapping and duplicated
    exits count once, and it never exceeds `end - start`.
    """
    count = 0
    first_lo = first_hi = 0
    spans: list[tuple[int, int]] | None = None
    for left_at, returned_at in exits:
        lo = left_at if left_at > start else start
        hi = end if returned_at is None or returned_at > end else returned_at
        if hi <= lo:
            continue  # outside the session, empty, or reversed
        if count == 0:
            first_lo, first_hi = lo, hi
        elif spans is None:
            spans = [(first_lo, first_hi), (lo, hi)]
        else:
            spans.append((lo, hi))
        count += 1
    if spans is None:
        return first_hi - first_lo  # 0 when no exit fell inside the session
    spans.sort()
    total = 0
    run_lo, run_hi = spans[0]
    for lo, hi in spans:
        if lo > run_hi:
            total += run_hi - run_lo
            run_lo, run_hi = lo, hi
        elif hi > run_hi:
            run_hi = hi
    return total + run_hi - run_lo


def net_minutes(start: Instant, end: Instant, exits: Iterable[ExitSpan]) -> int:
    """Face-to-face minutes: `(end - start - absent)` in whole minutes, rounded down, >= 0."""
    span = end - start
    if span <= 0:
        return 0
    return (span - absent_micros(start, end, exits)) // MICROS_PER_MINUTE


def exit_duration(left_at: Instant, returned_at: Instant | None, session_end: Instant) -> int:
    """How long one exit lasted, in microseconds (never negative).

    An exit that never returned lasts to `session_end`. A returned exit lasts to its return,
    even past the session's end: this is the absence the protocol judges ("return as soon as
    possible"), not the share of it that billing subtracts (see `absent_micros`).
    """
    until = session_end if returned_at is None else returned_at
    return until - left_at if until > left_at else 0
