"""The findings review: acknowledge a finding with a note, assign it to a therapist, resolve it
with a note. Each step is one ledger event (`stepout.domain.reviews`) and its audit record,
in one transaction.

Who: supervisors and admins review (`finding.review`); a therapist reads the findings about
their own sessions and those assigned to them, each with its review state and notes, and does
not change it; a biller reads findings with their state but not the notes.

Which finding: a key the caller's practice has a review for, or the key of a finding the audit
of the practice finds now (over `selection`, every record by default; an `exit-rate-high`
finding depends on the period, so a caller that listed it over a period passes that period).
Any other key, another practice's included, is not found.

The first step on a finding nobody has reviewed must find it. With a findings store
(`lookup`: on SQL storage `stepout.adapters.db.findings_store.lookup`), that is an indexed
read of the practice's stored audit (refreshed first, in the step's transaction, if the
ledger has moved on since it was computed); only `exit-rate-high`, which depends on the
period, is judged again over the caller's period. Without one, the practice's audit runs.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from stepout.domain.accounts import User
from stepout.domain.instants import Instant
from stepout.domain.permissions import allowed, authorize
from stepout.domain.reviews import (
    Review,
    ReviewError,
    acknowledge,
    assign,
    finding_key,
    is_key,
    open_review,
    resolve,
)
from stepout.policy.findings import Finding
from stepout.policy.model import Policy
from stepout.services.audit import Caller
from stepout.services.ports import AccountsUnitOfWork, Selection
from stepout.services.reporting import run_audit

Step = Literal["acknowledge", "assign", "resolve"]
STEPS: tuple[Step, ...] = ("acknowledge", "assign", "resolve")


class Reviews(Protocol):
    """Storage's reviews of one practice (notes in plain text)."""

    def reviews(self, practice: str, keys: Iterable[str]) -> dict[str, Review]: ...
    def review(self, practice: str, key: str) -> Review | None: ...
    def assigned_to(self, practice: str, assignee: str) -> list[Review]: ...


class ReviewsUnitOfWork(AccountsUnitOfWork, Protocol):
    @property
    def reviews(self) -> Reviews: ...


class FindingsLookup(Protocol):
    """The stored finding of `practice` with the review key `key`, the store made current
    first within `uow`'s transaction (None: no stored finding has it)."""

    def __call__(
        self, uow: ReviewsUnitOfWork, practice: str, key: str, policy: Policy, at: Instant
    ) -> Finding | None: ...


class FindingNotFound(LookupError):
    """No finding of the caller's practice has this key (the edge answers 404)."""


class NotATherapist(ValueError):
    """An assignee that is not an active therapist of the practice."""


@dataclass(frozen=True, slots=True)
class Reviewed:
    finding: Finding
    review: Review


def with_reviews(reviews: Reviews, practice: str, findings: Sequence[Finding]) -> list[Reviewed]:
    """Each finding with its review (an open one where nobody has touched it)."""
    opened = [open_review(practice, f) for f in findings]
    stored = reviews.reviews(practice, (r.key for r in opened))
    return [Reviewed(f, stored.get(r.key, r)) for f, r in zip(findings, opened, strict=True)]


def assigned_elsewhere(
    uow: ReviewsUnitOfWork,
    user: User,
    selection: Selection,
    policy: Policy,
    as_of: Instant,
) -> list[Reviewed]:
    """The findings assigned to the therapist `user` about another therapist's sessions (their
    own come from their own audit), as the audit finds them now over `selection`."""
    assigned = [
        r for r in uow.reviews.assigned_to(user.practice, user.id) if r.therapist != user.id
    ]
    wanted = {r.key: r for r in assigned}
    found: list[Reviewed] = []
    for therapist in sorted({r.therapist for r in assigned if r.therapist is not None}):
        scoped = Selection(selection.date_from, selection.date_to, user.practice, therapist)
        for f in run_audit(uow.records, scoped, policy, as_of):
            review = wanted.get(finding_key(user.practice, f))
            if review is not None:
                found.append(Reviewed(f, review))
    return found


def locate(
    uow: ReviewsUnitOfWork,
    practice: str,
    key: str,
    policy: Policy,
    as_of: Instant,
    selection: Selection | None = None,
    lookup: FindingsLookup | None = None,
) -> Review:
    """The review of the finding `key` names in `practice` (open if never touched)."""
    if not is_key(key):
        raise FindingNotFound(key)
    stored = uow.reviews.review(practice, key)
    if stored is not None:
        return stored
    rules: tuple[str, ...] | None = None
    if lookup is not None:
        found = lookup(uow, practice, key, policy, as_of)
        if found is not None:
            return open_review(practice, found)
        rules = ("exit-rate-high",)  # the one rule whose findings depend on the period
        if not policy.rule("exit-rate-high").enabled:
            raise FindingNotFound(key)
    scope = selection or Selection()
    scoped = Selection(scope.date_from, scope.date_to, practice, scope.therapist)
    for f in run_audit(uow.records, scoped, policy, as_of, rules):
        if finding_key(practice, f) == key:
            return open_review(practice, f)
    raise FindingNotFound(key)


def _check_assignee(uow: ReviewsUnitOfWork, practice: str, assignee: str) -> None:
    found = uow.accounts.user(assignee)
    if found is None or found.practice != practice:
        raise NotATherapist("No therapist of this practice has that id.")
    if found.role != "therapist" or found.disabled:
        raise NotATherapist("A finding is assigned to an active therapist of the practice.")


def review_step(
    uow_factory: Callable[[], ReviewsUnitOfWork],
    policy: Policy,
    user: User,
    key: str,
    step: Step,
    *,
    at: Instant,
    caller: Caller,
    note: str = "",
    assignee: str | None = None,
    selection: Selection | None = None,
    lookup: FindingsLookup | None = None,
) -> Review:
    """Take one review step on the finding `key` as `user`: its event and its audit record
    in one transaction. Raises `Forbidden`, `FindingNotFound`, `NotATherapist` or
    `ReviewError` (nothing is stored then)."""
    authorize(user, "finding.review")
    practice = user.practice
    with uow_factory() as uow:
        review = locate(uow, practice, key, policy, at, selection, lookup)
        if step == "acknowledge":
            event = acknowledge(review, note, actor=user.id, at=at)
        elif step == "resolve":
            event = resolve(review, note, actor=user.id, at=at)
        else:
            if not assignee:
                raise ReviewError("assignee_required", "Please choose a therapist.")
            _check_assignee(uow, practice, assignee)
            event = assign(review, assignee, actor=user.id, at=at)
        uow.ledger.append([event])
        uow.audit.record(caller.record(f"finding.{step}", key, practice=practice))
        after = uow.reviews.review(practice, key)
        uow.commit()
    if after is None:  # the ledger took an event it did not project
        raise LookupError(f"finding {key}: its review was not stored")
    return after


def sees_review_notes(user: User) -> bool:
    """Whether `user` reads the notes of a review: reviewers, and a therapist (of the findings
    they see: their own and those assigned to them); not a biller, who sees the state only."""
    return allowed(user, "finding.review") or user.role == "therapist"


def therapists(uow: AccountsUnitOfWork, practice: str) -> list[User]:
    """The practice's active therapists, whom a finding can be assigned to."""
    found = [u for u in uow.accounts.users(practice) if u.role == "therapist" and not u.disabled]
    return sorted(found, key=lambda u: u.username)
