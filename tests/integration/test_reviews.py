"""A finding's review on storage, on both engines: the steps are ledger events projected into
`finding_reviews` with their audit records in the same transaction; notes are sealed; the
review survives recomputing the audit and `stepout rebuild`; another practice's findings are
not found."""

import pytest
from sqlalchemy import text

from stepout.adapters.db import Database, tenancy
from stepout.domain.accounts import User
from stepout.domain.reviews import ReviewError, finding_key
from stepout.policy.model import load_policy
from stepout.services.accounts import AccountService
from stepout.services.audit import cli_caller
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit
from stepout.services.reviews import (
    FindingNotFound,
    NotATherapist,
    review_step,
    with_reviews,
)
from tests.integration.builders import at, exit_, practice, session, snapshot

PASSWORD = "synthetic-pass-0001"
NOTE = "FAKE-CANARY-0008 a synthetic review note"
POLICY = load_policy()
SUPER = User("sup-1", "p1", "sup", "supervisor")
SUPER_B = User("sup-b", "p2", "supb", "supervisor")
LATER = at(60 * 24 * 30)


def _setup(db: Database) -> None:
    with db.uow() as uow:
        uow.ledger.append(
            [
                practice(),
                practice("p2"),
                session("s1", at(0)),
                exit_("e1", "s1", at(10), at(13), reason="other", checked_in=False),
                session("s2", at(0), practice="p2", therapist="t-b"),
                exit_("e2", "s2", at(10), at(13), practice="p2", reason="other"),
            ]
        )
        uow.commit()
    accounts = AccountService(db.uow, lambda: at(0))
    accounts.add_user("ther", "p1", "therapist", PASSWORD, user_id="t-001")
    accounts.add_user("ther2", "p1", "therapist", PASSWORD, user_id="t-002")
    accounts.add_user("bill", "p1", "biller", PASSWORD, user_id="b-001")
    accounts.add_user("therb", "p2", "therapist", PASSWORD, user_id="t-b")


def _key(db: Database, practice_id: str, rule: str) -> str:
    with db.uow(read_only=True) as uow:
        found = run_audit(uow.records, Selection(practice=practice_id), POLICY, LATER)
    return next(finding_key(practice_id, f) for f in found if f.rule == rule)


def _step(db: Database, user: User, key: str, step: str, **kw: str) -> object:
    with tenancy.scope(user.practice):
        return review_step(
            db.uow,
            POLICY,
            user,
            key,
            step,  # type: ignore[arg-type]
            at=LATER,
            caller=cli_caller(user.practice),
            **kw,
        )


def test_the_review_is_stored_sealed_audited_and_survives_recomputation(db: Database) -> None:
    _setup(db)
    key = _key(db, "p1", "no-check-in")
    _step(db, SUPER, key, "acknowledge", note=NOTE)
    _step(db, SUPER, key, "assign", assignee="t-002")
    _step(db, SUPER, key, "resolve", note="Talked it through.")

    with db.uow(read_only=True) as uow:
        found = run_audit(uow.records, Selection(practice="p1"), POLICY, LATER)
        reviewed = {finding_key("p1", r.finding): r.review for r in with_reviews(
            uow.reviews, "p1", found)}  # fmt: skip
    review = reviewed[key]
    assert review.state == "resolved"
    assert review.acknowledged_note == NOTE
    assert review.assignee == "t-002"
    assert review.acknowledged_by == "sup-1"
    assert {r.state for k, r in reviewed.items() if k != key} == {"open"}

    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT acknowledged_note, resolved_note FROM finding_reviews"))
        assert all(v.startswith("so1.") for row in stored for v in row)
        events = conn.execute(text("SELECT data FROM events WHERE kind LIKE 'finding.%'"))
        assert all("FAKE-CANARY" not in d for (d,) in events)
        trail = conn.execute(
            text("SELECT action, target FROM audit_log WHERE action LIKE 'finding.%' ORDER BY seq")
        ).all()
    assert [tuple(t) for t in trail] == [
        ("finding.acknowledge", key),
        ("finding.assign", key),
        ("finding.resolve", key),
    ]
    assert db.verify_chains()["ledger"].ok


def test_rebuild_reproduces_the_reviews(db: Database) -> None:
    _setup(db)
    key = _key(db, "p1", "no-check-in")
    _step(db, SUPER, key, "acknowledge", note=NOTE)
    _step(db, SUPER, key, "assign", assignee="t-001")
    other = _key(db, "p1", "reason-not-exceptional")
    _step(db, SUPER, other, "acknowledge", note="Second one.")

    def rows() -> list[tuple[object, ...]]:
        with db.engine.connect() as conn:
            found = conn.execute(text("SELECT * FROM finding_reviews ORDER BY key"))
            return [tuple(r) for r in found]

    live, before = rows(), None
    with db.engine.connect() as conn:
        before = snapshot(conn)
    assert len(live) == 2
    db.rebuild_projections()
    assert rows() == live
    with db.engine.connect() as conn:
        assert snapshot(conn) == before


def test_refusals_store_nothing(db: Database) -> None:
    _setup(db)
    key = _key(db, "p1", "no-check-in")
    with pytest.raises(ReviewError, match="Acknowledge"):
        _step(db, SUPER, key, "resolve", note=NOTE)
    with pytest.raises(NotATherapist):
        _step(db, SUPER, key, "assign", assignee="b-001")
    with pytest.raises(NotATherapist):
        _step(db, SUPER, key, "assign", assignee="t-b")
    with pytest.raises(FindingNotFound):
        _step(db, SUPER, "f_" + "1" * 32, "acknowledge", note=NOTE)
    theirs = _key(db, "p2", "reason-not-exceptional")
    with pytest.raises(FindingNotFound):
        _step(db, SUPER, theirs, "acknowledge", note=NOTE)
    _step(db, SUPER_B, theirs, "acknowledge", note=NOTE)
    with pytest.raises(FindingNotFound):  # stored now, and still not p1's
        _step(db, SUPER, theirs, "resolve", note=NOTE)
    with db.engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind FROM events WHERE kind LIKE 'finding.%'")).all()
        practices = conn.execute(text("SELECT practice FROM finding_reviews")).all()
    assert [k for (k,) in kinds] == ["finding.acknowledged"]
    assert [p for (p,) in practices] == ["p2"]
