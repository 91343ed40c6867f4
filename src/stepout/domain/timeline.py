"""A session's timeline: the session as a bar from start to end (or now, while in progress),
each exit as a gap in it, and what the record says about each exit. Pure: no storage, no
clock (the caller passes `now`), no wording (labels are the protocol's keys; the page words
them).

Offsets are fractions of the session's span in [0, 1], for widths in a drawing. An exit that
never returned lasts to the session's end (to `now` while the session is in progress); the
parts of an exit outside the session are clipped away, as billing does (`facetime`). Exits may
overlap: each keeps its own gap, flagged `overlaps`, and the face-to-face segments are the
session minus the union of the gaps, so the net minutes count an overlap once.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stepout.domain.billing import BillingStatus, billing_status, supported_codes
from stepout.domain.facetime import gross_minutes, net_minutes
from stepout.domain.instants import Instant
from stepout.domain.records import Exit, Session
from stepout.domain.vocabulary import SAFEGUARDS, ClientInformed, EmsDecision, Reason, Source


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the session: `start` and `end` are fractions of its span (0 <= start <= end
    <= 1); `start_at` and `end_at` the instants."""

    start: float
    end: float
    start_at: Instant
    end_at: Instant

    @property
    def width(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Gap:
    """One exit, drawn as a gap in the session's bar, with what its record says."""

    number: int  # 1, 2, ... in order of leaving
    exit_id: str
    segment: Segment | None  # None: the exit lies wholly outside the session
    left_at: Instant
    returned_at: Instant | None  # None: never returned (the gap lasts to the session's end)
    reason: Reason | None
    overlaps: bool  # another exit is out at the same time
    client_informed: ClientInformed
    explanation: str | None  # None when not recorded or not to be shown to this reader
    safeguards: tuple[str, ...]  # in the protocol's order
    ems: EmsDecision | None
    attended_by: str | None
    checked_in: bool
    signed_at: Instant | None
    amendments: tuple[Instant, ...]  # when each amendment was made, oldest first
    source: Source = "declared"  # "sensor": detected, not declared (`domain.detection`)

    @property
    def returned(self) -> bool:
        return self.returned_at is not None


@dataclass(frozen=True, slots=True)
class Timeline:
    session_id: str
    start: Instant
    end: Instant  # the session's end, or now while it is in progress
    in_progress: bool
    present: tuple[Segment, ...]  # face to face: the session minus every gap
    gaps: tuple[Gap, ...]
    gross_minutes: int
    net_minutes: int
    billed_codes: tuple[str, ...]
    supported_codes: tuple[str, ...]
    billing_status: BillingStatus | None  # None while in progress: nothing is billed yet


def _fraction(at: Instant, start: Instant, span: int) -> float:
    if span <= 0:
        return 0.0
    return min(1.0, max(0.0, (at - start) / span))


def _clip(lo: Instant, hi: Instant | None, start: Instant, end: Instant) -> tuple[int, int] | None:
    lo = max(lo, start)
    hi = end if hi is None else min(hi, end)
    return (lo, hi) if hi > lo else None


def build(
    session: Session,
    exits: Sequence[Exit],
    now: Instant,
    *,
    amendments: Mapping[str, Sequence[Instant]] | None = None,
    show_explanation: bool = True,
) -> Timeline:
    """The timeline of `session` with its `exits` (exits of another session are ignored).

    `amendments` maps an exit's id to the instants of its amendments; `show_explanation` False
    leaves out what the client was told in words (the fact and when they were told stay).
    """
    start = session.start
    end = session.end if session.end is not None else max(now, start)
    span = end - start
    own = sorted((x for x in exits if x.session == session.id), key=lambda x: (x.left_at, x.id))
    clipped = [_clip(x.left_at, x.returned_at, start, end) for x in own]

    def segment(lo: Instant, hi: Instant) -> Segment:
        return Segment(_fraction(lo, start, span), _fraction(hi, start, span), lo, hi)

    gaps: list[Gap] = []
    notes = amendments or {}
    for i, (x, c) in enumerate(zip(own, clipped, strict=True)):
        overlaps = c is not None and any(
            j != i and o is not None and o[0] < c[1] and c[0] < o[1] for j, o in enumerate(clipped)
        )
        words = x.explanation.strip() if x.explanation and x.explanation.strip() else None
        gaps.append(
            Gap(
                number=i + 1,
                exit_id=x.id,
                segment=None if c is None else segment(*c),
                left_at=x.left_at,
                returned_at=x.returned_at,
                reason=x.reason,
                overlaps=overlaps,
                client_informed=x.client_informed,
                explanation=words if show_explanation else None,
                safeguards=tuple(s for s in SAFEGUARDS if s in x.safeguards),
                ems=x.ems,
                attended_by=x.client_attended_by,
                checked_in=x.checked_in,
                signed_at=x.signed_at,
                amendments=tuple(sorted(notes.get(x.id, ()))),
                source=x.source,
            )
        )

    present: list[Segment] = []
    cursor = start
    for lo, hi in sorted(c for c in clipped if c is not None):
        if lo > cursor:
            present.append(segment(cursor, lo))
        cursor = max(cursor, hi)
    if end > cursor:
        present.append(segment(cursor, end))

    spans = [(x.left_at, x.returned_at) for x in own]
    net = net_minutes(start, end, spans)
    billed = tuple(session.billed_codes)
    return Timeline(
        session_id=session.id,
        start=start,
        end=end,
        in_progress=session.in_progress,
        present=tuple(present),
        gaps=tuple(gaps),
        gross_minutes=gross_minutes(start, end),
        net_minutes=net,
        billed_codes=billed,
        supported_codes=supported_codes(billed, net),
        billing_status=None if session.in_progress else billing_status(billed, net),
    )
