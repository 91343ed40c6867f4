"""A finding's review: acknowledged with a note, assigned to a therapist, resolved with a note.

Findings are computed from the records (`stepout.policy`), never stored: the audit of tomorrow
recomputes them. Their review is what is stored, as ledger events keyed by the finding's
stable key (`finding_key`: a hash of the practice, the rule and the ids the finding names), so
that the same finding recomputed later finds its review again.

The lifecycle is linear: `open` (no event yet) → `acknowledged` (with a note) → `resolved`
(with a note). A finding must be acknowledged before it is resolved, so that the ledger always
shows who took it up before who closed it; nothing is undone or deleted (a resolved finding
stays resolved, with both notes). It can be assigned to a therapist of the practice while it
is open or acknowledged, and reassigned; not once resolved.

Each event's data repeats the finding's identity (rule, session, exit, therapist), so that
the projection (`finding_reviews`) holds it without recomputing the audit. The notes are free
text: the SQL ledger seals them (`fieldcrypt`), as every free-text field.
"""

import hashlib
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

import orjson

from stepout.domain.events import Event
from stepout.domain.instants import Instant
from stepout.policy.findings import Finding

State = Literal["open", "acknowledged", "resolved"]
STATES: Final[tuple[State, ...]] = ("open", "acknowledged", "resolved")

ACKNOWLEDGED: Final = "finding.acknowledged"
ASSIGNED: Final = "finding.assigned"
RESOLVED: Final = "finding.resolved"
REVIEW_KINDS: Final = frozenset({ACKNOWLEDGED, ASSIGNED, RESOLVED})

KEY_PREFIX: Final = "f_"
NOTE_LIMIT: Final = 4000


def finding_key(practice: str, finding: Finding) -> str:
    """The finding's stable key: the same practice, rule, session, exit and therapist give the
    same key on every recomputation (the policy version, severity and message do not count:
    a finding whose wording changes is still the same finding). URL- and audit-target-safe,
    and it tells nothing of the ids it hashes."""
    identity = orjson.dumps(
        ["stepout/finding/1", practice, finding.rule, finding.session, finding.exit,
         finding.therapist]
    )  # fmt: skip
    return KEY_PREFIX + hashlib.sha256(identity).hexdigest()[:32]


def is_key(value: str) -> bool:
    body = value[len(KEY_PREFIX) :]
    return (
        value.startswith(KEY_PREFIX)
        and len(body) == 32
        and all(c in "0123456789abcdef" for c in body)
    )


@dataclass(frozen=True, slots=True)
class Review:
    """The review state of one finding (its identity, and what was done about it)."""

    key: str
    practice: str
    rule: str
    session: str | None
    exit: str | None
    therapist: str | None
    state: State = "open"
    assignee: str | None = None
    assigned_by: str | None = None
    assigned_at: Instant | None = None
    acknowledged_by: str | None = None
    acknowledged_at: Instant | None = None
    acknowledged_note: str | None = None
    resolved_by: str | None = None
    resolved_at: Instant | None = None
    resolved_note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The review as the API shows it beside a finding (instants as ISO 8601 text are the
        edge's job: here they stay microseconds)."""
        return {
            "key": self.key,
            "state": self.state,
            "assignee": self.assignee,
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": self.acknowledged_at,
            "acknowledged_note": self.acknowledged_note,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at,
            "resolved_note": self.resolved_note,
        }


def open_review(practice: str, finding: Finding) -> Review:
    """The review of a finding nobody has touched yet."""
    return Review(
        key=finding_key(practice, finding),
        practice=practice,
        rule=finding.rule,
        session=finding.session,
        exit=finding.exit,
        therapist=finding.therapist,
    )


class ReviewError(ValueError):
    """A review step the lifecycle refuses; `code` is stable, the message plain."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _identity(review: Review) -> dict[str, Any]:
    return {
        "rule": review.rule,
        "session": review.session,
        "exit": review.exit,
        "therapist": review.therapist,
    }


def _note(note: str) -> str:
    text = note.strip()
    if not text:
        raise ReviewError("note_required", "Please write a note.")
    if len(text) > NOTE_LIMIT:
        raise ReviewError("note_too_long", f"Please keep the note under {NOTE_LIMIT} characters.")
    return text


def acknowledge(review: Review, note: str, *, actor: str, at: Instant) -> Event:
    """The event that acknowledges an open finding, with a note."""
    text = _note(note)
    if review.state != "open":
        raise ReviewError("already_acknowledged", f"This finding is already {review.state}.")
    data = {**_identity(review), "note": text}
    return Event(ACKNOWLEDGED, review.practice, review.key, at, data, actor)


def assign(review: Review, assignee: str, *, actor: str, at: Instant) -> Event:
    """The event that assigns a finding (open or acknowledged) to a therapist. Whether the
    assignee is a therapist of the practice is the service's check (accounts are not here)."""
    if review.state == "resolved":
        raise ReviewError("resolved", "This finding is resolved: it can no longer be assigned.")
    data = {**_identity(review), "assignee": assignee}
    return Event(ASSIGNED, review.practice, review.key, at, data, actor)


def resolve(review: Review, note: str, *, actor: str, at: Instant) -> Event:
    """The event that resolves an acknowledged finding, with a note."""
    text = _note(note)
    if review.state == "open":
        raise ReviewError("not_acknowledged", "Acknowledge this finding before resolving it.")
    if review.state == "resolved":
        raise ReviewError("already_resolved", "This finding is already resolved.")
    data = {**_identity(review), "note": text}
    return Event(RESOLVED, review.practice, review.key, at, data, actor)


class ReviewEvolveError(ValueError):
    """A review event that cannot apply (a corrupt or reordered ledger)."""


def evolve_review(current: Review | None, event: Event) -> Review:
    """The review after `event` (`current` None for a finding's first event)."""
    d = event.data
    if event.kind not in REVIEW_KINDS:
        raise ReviewEvolveError(f"{event.kind}: not a review event")
    review = current or Review(
        key=event.subject,
        practice=event.practice,
        rule=d["rule"],
        session=d.get("session"),
        exit=d.get("exit"),
        therapist=d.get("therapist"),
    )
    if review.practice != event.practice:
        raise ReviewEvolveError(f"{event.kind}: {event.subject} is another practice's")
    if event.kind == ACKNOWLEDGED:
        return replace(
            review,
            state="resolved" if review.state == "resolved" else "acknowledged",
            acknowledged_by=event.actor,
            acknowledged_at=event.at,
            acknowledged_note=d.get("note"),
        )
    if event.kind == ASSIGNED:
        return replace(
            review, assignee=d["assignee"], assigned_by=event.actor, assigned_at=event.at
        )
    return replace(
        review,
        state="resolved",
        resolved_by=event.actor,
        resolved_at=event.at,
        resolved_note=d.get("note"),
    )
