"""Rebuilding the projections from the ledger reproduces exactly what live appends wrote."""

from stepout.adapters.db import Database
from stepout.domain.events import Event
from tests.integration.builders import (
    T0,
    at,
    concern,
    exit_,
    practice,
    session,
    snapshot,
    workflow,
)


def _history(db: Database) -> int:
    """Imports, live workflows, amendments and acknowledgements over several units of work
    and append calls; returns the number of events."""
    batches: list[list[Event]] = [
        [practice(), practice("p2", "America/New_York")],
        [session(f"s{i}", at(60 * i)) for i in range(5)]
        + [exit_(f"e{i}", f"s{i}", at(60 * i + 10), at(60 * i + 14)) for i in range(0, 5, 2)]
        + [concern("k1", "s1", at(120))],
        workflow("w1", "x1", at(400)),
        workflow("w2", "x2", at(500), therapist="t-002")[:4],  # still open
        [
            Event(
                "session.amended",
                "p1",
                "s3",
                at(600),
                {
                    "changes": {"therapist": "t-009", "billed_codes": ["90837"]},
                    "note": "Wrong therapist on import.",
                },
            ),
            Event(
                "exit.amended",
                "p1",
                "e2",
                at(601),
                {"changes": {"reason": "client_safety"}, "note": "Reclassified."},
            ),
            Event(
                "concern.acknowledged",
                "p1",
                "k1",
                at(602),
                {"acknowledged_at": "2026-03-03T09:00:00+00:00"},
            ),
            Event(
                "exit.amended",
                "p1",
                "e4",
                at(603),
                {"changes": {"session": "s3"}, "note": "Filed under the wrong session."},
            ),
        ],
        [session("s9", T0, practice="p2"), exit_("e9", "s9", at(3), practice="p2")],
    ]
    for i, batch in enumerate(batches):
        with db.uow() as uow:
            if i % 2:
                uow.ledger.append(batch)
            else:
                for event in batch:
                    uow.ledger.append([event])
            uow.commit()
    return sum(len(b) for b in batches)


def test_rebuild_reproduces_the_live_projections(db: Database) -> None:
    events = _history(db)
    with db.engine.connect() as conn:
        live = snapshot(conn)
    assert len(live["amendments"]) == 3
    assert db.rebuild_projections() == events
    with db.engine.connect() as conn:
        assert snapshot(conn) == live
    assert db.verify_ledger().checked == events


def test_rebuild_of_an_import_reproduces_it(db: Database) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice()])
        uow.ledger.append([session(f"s{i:04d}", at(i)) for i in range(2500)])
        uow.ledger.append([exit_(f"e{i:04d}", f"s{i:04d}", at(i)) for i in range(0, 2500, 3)])
        uow.commit()
    with db.engine.connect() as conn:
        live = snapshot(conn)
    db.rebuild_projections()
    with db.engine.connect() as conn:
        assert snapshot(conn) == live


def test_amendments_move_the_exits_with_their_session(db: Database) -> None:
    _history(db)
    with db.uow(read_only=True) as uow:
        s3 = uow.records.session("s3")
        assert s3 is not None
        assert s3.therapist == "t-009"
        assert s3.billed_codes == ("90837",)
        assert [x.id for x in uow.records.exits_of_session("s3")] == ["e4"]
        assert uow.records.exits_of_session("s4") == []
        e2 = uow.records.exit("e2")
        assert e2 is not None
        assert e2.reason == "client_safety"
    with db.engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("SELECT id, therapist FROM exits WHERE id = 'e4'")).all()
    assert rows == [("e4", "t-009")]
