"""The three records of the interchange format, as the core sees them.

Instants are integers (see `instants`). A session whose `end` is None is still in progress;
an exit whose `returned_at` is None has not ended (for the rules and for billing it lasts to the
session's end).
"""

from dataclasses import dataclass, field

from stepout.domain.instants import Instant
from stepout.domain.vocabulary import ClientInformed, EmsDecision, Modality, Reason, Source


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    practice: str
    therapist: str
    client: str
    room: str
    modality: Modality
    start: Instant
    end: Instant | None
    billed_codes: tuple[str, ...] = ()

    @property
    def in_progress(self) -> bool:
        return self.end is None


@dataclass(frozen=True, slots=True)
class Exit:
    id: str
    session: str
    source: Source
    left_at: Instant
    reason: Reason | None = None
    reason_note: str | None = None
    returned_at: Instant | None = None
    client_informed: ClientInformed = "not_informed"
    explanation: str | None = None
    safeguards: frozenset[str] = field(default_factory=frozenset)
    client_attended_by: str | None = None
    ems: EmsDecision | None = None
    checked_in: bool = False
    signed_at: Instant | None = None
    # Live workflow only (not part of the interchange format).
    expected_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Concern:
    id: str
    session: str
    raised_at: Instant
    text: str
    acknowledged_at: Instant | None = None
