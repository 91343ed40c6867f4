"""A finding's review in the core: a stable key, and the lifecycle open → acknowledged →
resolved (assignable until resolved), folded from its events."""

import pytest

from stepout.domain.accounts import User
from stepout.domain.events import KINDS, Event, EvolveError, evolve
from stepout.domain.permissions import Forbidden, allowed
from stepout.domain.reviews import (
    REVIEW_KINDS,
    Review,
    ReviewError,
    ReviewEvolveError,
    acknowledge,
    assign,
    evolve_review,
    finding_key,
    is_key,
    open_review,
    resolve,
)
from stepout.policy.findings import Finding
from stepout.policy.model import load_policy
from stepout.services.audit import cli_caller
from stepout.services.reviews import review_step

F = Finding("no-check-in", "warning", "s1", "e1", "t-001", "No check-in.", "2026.1")


def fold(events: list[Event]) -> Review:
    review: Review | None = None
    for e in events:
        review = evolve_review(review, e)
    assert review is not None
    return review


def test_the_key_is_stable_and_names_practice_rule_and_ids_only() -> None:
    key = finding_key("p1", F)
    assert is_key(key)
    assert key == finding_key("p1", F)
    # Recomputed tomorrow, with another wording, severity or policy version: the same finding.
    reworded = Finding("no-check-in", "violation", "s1", "e1", "t-001", "Other words.", "2027.1")
    assert finding_key("p1", reworded) == key
    # Another practice, rule, session, exit or therapist: another finding.
    others = [
        finding_key("p2", F),
        finding_key("p1", Finding("absence-too-long", *_rest(F))),
        finding_key("p1", Finding("no-check-in", "warning", "s2", "e1", "t-001", "", "")),
        finding_key("p1", Finding("no-check-in", "warning", "s1", None, "t-001", "", "")),
        finding_key("p1", Finding("no-check-in", "warning", "s1", "e1", "t-002", "", "")),
    ]
    assert len({key, *others}) == 6
    # Ids with separators cannot collide.
    a = Finding("repeated-exits", "warning", "a:b", None, "c", "", "")
    b = Finding("repeated-exits", "warning", "a", None, "b:c", "", "")
    assert finding_key("p1", a) != finding_key("p1", b)
    assert "s1" not in key


def _rest(f: Finding) -> tuple[str, str | None, str | None, str | None, str, str]:
    return (f.severity, f.session, f.exit, f.therapist, f.message, f.policy_version)


def test_keys_that_are_not_keys() -> None:
    for value in ("", "f_", "f_" + "0" * 31, "f_" + "g" * 32, "x_" + "0" * 32, "f_" + "A" * 32):
        assert not is_key(value)


def test_acknowledge_then_assign_then_resolve() -> None:
    r0 = open_review("p1", F)
    assert r0.state == "open"
    e1 = acknowledge(r0, "  Looked at it.  ", actor="sup", at=10)
    assert e1.kind == "finding.acknowledged"
    assert e1.subject == r0.key
    assert e1.data == {
        "rule": "no-check-in",
        "session": "s1",
        "exit": "e1",
        "therapist": "t-001",
        "note": "Looked at it.",
    }
    r1 = evolve_review(None, e1)
    assert (r1.state, r1.acknowledged_by, r1.acknowledged_at) == ("acknowledged", "sup", 10)
    r2 = evolve_review(r1, assign(r1, "t-002", actor="sup", at=11))
    assert (r2.state, r2.assignee) == ("acknowledged", "t-002")
    r3 = evolve_review(r2, resolve(r2, "Done.", actor="admin", at=12))
    assert (r3.state, r3.resolved_note, r3.resolved_by) == ("resolved", "Done.", "admin")
    assert r3.acknowledged_note == "Looked at it."  # nothing is lost


def test_an_open_finding_can_be_assigned_and_reassigned() -> None:
    r0 = open_review("p1", F)
    r1 = evolve_review(None, assign(r0, "t-001", actor="sup", at=1))
    assert (r1.state, r1.assignee) == ("open", "t-001")
    r2 = evolve_review(r1, assign(r1, "t-002", actor="sup", at=2))
    assert r2.assignee == "t-002"


def test_resolve_needs_an_acknowledgement_first() -> None:
    with pytest.raises(ReviewError) as refused:
        resolve(open_review("p1", F), "Done.", actor="sup", at=1)
    assert refused.value.code == "not_acknowledged"


def test_nothing_is_done_twice_or_after_resolution() -> None:
    r = open_review("p1", F)
    r = evolve_review(None, acknowledge(r, "Seen.", actor="sup", at=1))
    with pytest.raises(ReviewError, match="already acknowledged"):
        acknowledge(r, "Again.", actor="sup", at=2)
    r = evolve_review(r, resolve(r, "Done.", actor="sup", at=3))
    for attempt in (
        lambda: acknowledge(r, "Again.", actor="sup", at=4),
        lambda: resolve(r, "Again.", actor="sup", at=4),
        lambda: assign(r, "t-001", actor="sup", at=4),
    ):
        with pytest.raises(ReviewError):
            attempt()


def test_notes_are_required_and_bounded() -> None:
    r = open_review("p1", F)
    for note in ("", "   \n"):
        with pytest.raises(ReviewError) as refused:
            acknowledge(r, note, actor="sup", at=1)
        assert refused.value.code == "note_required"
    with pytest.raises(ReviewError) as refused:
        acknowledge(r, "x" * 5000, actor="sup", at=1)
    assert refused.value.code == "note_too_long"


def test_the_fold_refuses_what_is_not_a_review_or_another_practices() -> None:
    r = evolve_review(None, acknowledge(open_review("p1", F), "Seen.", actor="s", at=1))
    with pytest.raises(ReviewEvolveError):
        evolve_review(r, Event("exit.signed", "p1", r.key, 2, {}))
    moved = acknowledge(open_review("p2", F), "Seen.", actor="s", at=2)
    with pytest.raises(ReviewEvolveError):
        evolve_review(r, moved._replace(subject=r.key))


def test_review_events_are_in_the_catalogue_but_are_not_records() -> None:
    assert set(KINDS) >= REVIEW_KINDS
    event = acknowledge(open_review("p1", F), "Seen.", actor="sup", at=1)
    with pytest.raises(EvolveError, match="review"):
        evolve(None, event)


def test_only_supervisors_and_admins_review() -> None:
    for role, may in (("admin", True), ("supervisor", True), ("therapist", False),
                      ("biller", False)):  # fmt: skip
        assert allowed(User("u", "p1", "u", role), "finding.review") is may  # type: ignore[arg-type]

    def no_storage() -> object:
        raise AssertionError("refused before any unit of work")

    with pytest.raises(Forbidden):
        review_step(
            no_storage,  # type: ignore[arg-type]
            load_policy(),
            User("t-001", "p1", "ther", "therapist"),
            finding_key("p1", F),
            "acknowledge",
            at=1,
            caller=cli_caller("p1"),
            note="Seen.",
        )
