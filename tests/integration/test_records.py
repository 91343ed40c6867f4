"""Reading the projections: lookups, the open-exit check, and the bundle stream."""

import tracemalloc
from datetime import date

import pytest

from stepout.adapters.db import Database, rows
from stepout.domain.events import Event
from stepout.domain.instants import parse_instant
from stepout.domain.records import Concern, Exit, Session
from stepout.services.ports import Selection
from tests.integration.builders import (
    MINUTE,
    at,
    concern,
    exit_,
    iso,
    practice,
    session,
    workflow,
)


def _store(db: Database, *events: Event) -> None:
    with db.uow() as uow:
        uow.ledger.append(list(events))
        uow.commit()


def _ids(db: Database, selection: Selection) -> list[str]:
    with db.uow(read_only=True) as uow:
        return [b.session.id for b in uow.records.bundles(selection)]


def test_bundles_come_in_start_then_id_order_with_their_records_in_time_order(
    db: Database,
) -> None:
    _store(
        db,
        practice(),
        session("s-b", at(60)),
        session("s-a", at(60)),  # same start: id breaks the tie
        session("s-0", at(0)),
        session("s-9", at(120)),
        exit_("e2", "s-a", at(80), at(81)),
        exit_("e1", "s-a", at(70), at(71)),
        exit_("e0", "s-a", at(70), at(72)),  # same left_at: id breaks the tie
        exit_("e9", "s-9", at(130)),
        concern("k2", "s-0", at(55)),
        concern("k1", "s-0", at(51)),
    )
    with db.uow(read_only=True) as uow:
        bundles = list(uow.records.bundles(Selection()))
    assert [b.session.id for b in bundles] == ["s-0", "s-a", "s-b", "s-9"]
    by_id = {b.session.id: b for b in bundles}
    assert [x.id for x in by_id["s-a"].exits] == ["e0", "e1", "e2"]
    assert [k.id for k in by_id["s-0"].concerns] == ["k1", "k2"]
    assert by_id["s-b"].exits == by_id["s-b"].concerns == ()
    assert [x.id for x in by_id["s-9"].exits] == ["e9"]
    assert all(x.session == b.session.id for b in bundles for x in b.exits)


def test_records_read_back_exactly_as_they_were_recorded(db: Database) -> None:
    _store(
        db,
        practice(),
        session("s1", at(0), codes=("90837", "90785")),
        exit_(
            "e1",
            "s1",
            at(10),
            None,
            reason="client_safety",
            reason_note="Fire alarm test.",
            client_attended_by="staff-02",
            ems="not_needed",
            checked_in=True,
            signed_at=iso(at(90)),
            safeguards=["screen_locked"],
        ),
        concern("k1", "s1", at(55)),
    )
    with db.uow(read_only=True) as uow:
        assert uow.records.session("s1") == Session(
            "s1", "p1", "t-001", "client-0001", "r1", "in_person", at(0), at(50),
            ("90837", "90785"),
        )  # fmt: skip
        assert uow.records.exit("e1") == Exit(
            id="e1", session="s1", source="declared", left_at=at(10), reason="client_safety",
            reason_note="Fire alarm test.", returned_at=None, client_informed="before_leaving",
            explanation="Stepping out to fix the video link.",
            safeguards=frozenset({"screen_locked"}), client_attended_by="staff-02",
            ems="not_needed", checked_in=True, signed_at=at(90),
        )  # fmt: skip
        assert uow.records.concern("k1") == Concern(
            "k1", "s1", at(55), "The session was interrupted."
        )
        practice_row = uow.records.practice("p1")
        assert practice_row is not None
        assert practice_row.timezone == "UTC"
        assert uow.records.session("nope") is None


def test_dates_are_read_in_the_practice_time_zone_inclusive_of_both_ends(db: Database) -> None:
    ny = "America/New_York"
    _store(
        db,
        practice("p1", ny),
        practice("p2", "UTC"),
        # p1 (New York, UTC-5 in February, UTC-4 from 8 March)
        session("a-feb28-late", parse_instant("2026-02-28T23:30:00-05:00")),  # 1 Mar in UTC
        session("a-mar01-early", parse_instant("2026-03-01T00:10:00-05:00")),
        session("a-mar10-late", parse_instant("2026-03-10T23:50:00-04:00")),  # 11 Mar in UTC
        session("a-mar11", parse_instant("2026-03-11T00:00:00-04:00")),
        # p2 (UTC)
        session("b-feb28-late", parse_instant("2026-02-28T23:30:00+00:00"), practice="p2"),
        session("b-mar01", parse_instant("2026-03-01T00:00:00+00:00"), practice="p2"),
        session("b-mar10-late", parse_instant("2026-03-10T23:59:00+00:00"), practice="p2"),
        session("b-mar11", parse_instant("2026-03-11T00:00:00+00:00"), practice="p2"),
    )
    march = Selection(date_from=date(2026, 3, 1), date_to=date(2026, 3, 10))
    assert sorted(_ids(db, march)) == ["a-mar01-early", "a-mar10-late", "b-mar01", "b-mar10-late"]
    assert sorted(_ids(db, Selection(date_from=date(2026, 3, 1), practice="p1"))) == [
        "a-mar01-early", "a-mar10-late", "a-mar11",
    ]  # fmt: skip
    assert sorted(_ids(db, Selection(date_to=date(2026, 2, 28)))) == [
        "a-feb28-late", "b-feb28-late",
    ]  # fmt: skip
    one_day = Selection(date_from=date(2026, 3, 10), date_to=date(2026, 3, 10))
    assert sorted(_ids(db, one_day)) == ["a-mar10-late", "b-mar10-late"]
    nobody = Selection(date_from=date(2026, 3, 1), practice="p-unknown")
    assert _ids(db, nobody) == []


def test_sessions_in_progress_are_left_out_of_bundles_but_not_of_the_dump(db: Database) -> None:
    _store(db, practice(), session("s1", at(0)), session("s2", at(60), None))
    _store(db, *workflow("w1", "x1", at(120))[:3])
    assert _ids(db, Selection()) == ["s1"]
    with db.uow(read_only=True) as uow:
        dumped = [(type(r).__name__, r.id) for r in uow.records.dump()]
    assert dumped == [("Session", "s1"), ("Session", "s2"), ("Session", "w1"), ("Exit", "x1")]


def test_therapist_and_practice_filters(db: Database) -> None:
    _store(
        db,
        practice(),
        practice("p2"),
        session("s1", at(0), therapist="t-001"),
        session("s2", at(1), therapist="t-002"),
        session("s3", at(2), therapist="t-001", practice="p2"),
    )
    assert _ids(db, Selection(therapist="t-001")) == ["s1", "s3"]
    assert _ids(db, Selection(therapist="t-001", practice="p2")) == ["s3"]
    assert _ids(db, Selection(practice="p1")) == ["s1", "s2"]


def test_the_open_exit_of_a_therapist_is_the_unreturned_one_in_a_session_in_progress(
    db: Database,
) -> None:
    _store(db, practice(), practice("p2"))
    _store(db, *workflow("w1", "x1", at(0))[:3])  # exit declared, not back
    with db.uow(read_only=True) as uow:
        found = uow.records.open_exit_of_therapist("p1", "t-001")
        assert found is not None
        assert found.id == "x1"
        assert uow.records.open_exit_of_therapist("p1", "t-002") is None
        assert uow.records.open_exit_of_therapist("p2", "t-001") is None
    returned = Event("exit.returned", "p1", "x1", at(9), {"returned_at": iso(at(9))})
    _store(db, returned)
    with db.uow(read_only=True) as uow:
        assert uow.records.open_exit_of_therapist("p1", "t-001") is None
    # An exit that never returned, in a session that has ended, is not open.
    _store(db, session("s2", at(100)), exit_("e2", "s2", at(110), None))
    with db.uow(read_only=True) as uow:
        assert uow.records.open_exit_of_therapist("p1", "t-001") is None


def test_the_open_exit_follows_a_session_moved_to_another_therapist(db: Database) -> None:
    _store(db, practice(), *workflow("w1", "x1", at(0))[:2])
    amend = {"changes": {"therapist": "t-002"}, "note": "Covered by a colleague."}
    _store(db, Event("session.amended", "p1", "w1", at(3), amend))
    with db.uow(read_only=True) as uow:
        assert uow.records.open_exit_of_therapist("p1", "t-001") is None
        found = uow.records.open_exit_of_therapist("p1", "t-002")
        assert found is not None
        assert found.id == "x1"


def test_lookups_of_many_ids_return_those_that_exist(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rows, "IN_CHUNK", 500)  # several queries per lookup
    n = 2_100
    events = [practice()] + [session(f"s{i:05d}", at(i)) for i in range(n)]
    events += [exit_(f"e{i:05d}", f"s{i:05d}", at(i)) for i in range(0, n, 2)]
    events += [concern(f"k{i:05d}", f"s{i:05d}", at(i + 1)) for i in range(0, n, 3)]
    _store(db, *events)
    wanted = [f"s{i:05d}" for i in range(-50, n + 50)]
    with db.uow(read_only=True) as uow:
        sessions = uow.records.sessions(wanted)
        exits = uow.records.exits(f"e{i:05d}" for i in range(n))
        concerns = uow.records.concerns([f"k{i:05d}" for i in range(n)] * 2)
        practices = uow.records.practices(["p1", "p2"])
        assert uow.records.sessions([]) == {}
    assert len(sessions) == n
    assert sessions["s00042"].start == at(42)
    assert len(exits) == (n + 1) // 2
    assert exits["e00042"].session == "s00042"
    assert len(concerns) == (n + 2) // 3
    assert list(practices) == ["p1"]


def test_exits_and_concerns_of_one_session(db: Database) -> None:
    _store(
        db,
        practice(),
        session("s1", at(0)),
        session("s2", at(0)),
        exit_("e2", "s1", at(20), at(21)),
        exit_("e1", "s1", at(10), at(11)),
        exit_("e3", "s2", at(10), at(11)),
        concern("k1", "s1", at(51)),
    )
    with db.uow(read_only=True) as uow:
        assert [x.id for x in uow.records.exits_of_session("s1")] == ["e1", "e2"]
        assert [k.id for k in uow.records.concerns_of_session("s1")] == ["k1"]
        assert uow.records.concerns_of_session("s2") == []


def _peak_streaming(db: Database) -> tuple[int, int]:
    tracemalloc.start()
    try:
        seen = 0
        with db.uow(read_only=True) as uow:
            for bundle in uow.records.bundles(Selection()):
                seen += 1 + len(bundle.exits)
        return seen, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_bundles_stream_in_bounded_memory(db: Database) -> None:
    """Streaming four times as many sessions takes about the same peak memory."""

    def add(start: int, n: int) -> None:
        events = [session(f"s{i:06d}", at(i)) for i in range(start, start + n)]
        events += [
            exit_(f"e{i:06d}", f"s{i:06d}", at(i) + MINUTE) for i in range(start, start + n, 4)
        ]
        _store(db, *events)

    _store(db, practice())
    add(0, 5_000)
    small, small_peak = _peak_streaming(db)
    add(5_000, 15_000)
    large, large_peak = _peak_streaming(db)
    assert (small, large) == (6_250, 25_000)
    assert large_peak < 1.5 * small_peak + 1_000_000, (small_peak, large_peak)


def test_bundles_to_judge_skip_sessions_that_cannot_yield_a_finding(db: Database) -> None:
    from stepout.domain.billing import minimum_net_minutes
    from stepout.domain.facetime import gross_minutes

    _store(
        db,
        practice(),
        practice("p2", "America/New_York"),
        session("plain", at(0), 55, codes=("90837",)),  # 55 min reach 90837's 53
        session("short", at(60), 50, codes=("90837",)),  # 50 min do not
        session("unbilled", at(120), 10, codes=()),
        session("crisis", at(180), 100, codes=("90839", "90840")),  # needs 75
        session("with-exit", at(240), 60, therapist="t-002"),
        session("with-concern", at(300), 60, therapist="t-002"),
        session("open", at(360), None),
        session("elsewhere", at(420), 5, practice="p2", codes=("90832",)),
        exit_("e1", "with-exit", at(250), at(251)),
        exit_("e2", "open", at(370)),
        concern("k1", "with-concern", at(365)),
    )

    def expected(selection: Selection) -> tuple[list[str], dict[str, tuple[int, int]]]:
        ids, counts = [], {}
        with db.uow(read_only=True) as uow:
            for b in uow.records.bundles(selection):
                s = b.session
                n, x = counts.get(s.therapist, (0, 0))
                counts[s.therapist] = (n + 1, x + bool(b.exits))
                short = gross_minutes(s.start, s.end or s.start) < minimum_net_minutes(
                    s.billed_codes
                )
                if b.exits or b.concerns or short:
                    ids.append(s.id)
        return ids, counts

    for selection in (Selection(), Selection(practice="p1"), Selection(therapist="t-002")):
        with db.uow(read_only=True) as uow:
            bundles, counts = uow.records.bundles_to_judge(selection, minimum_net_minutes)
            got = [b.session.id for b in bundles]
        assert (got, counts) == expected(selection)
    assert expected(Selection())[0] == ["short", "with-exit", "with-concern", "elsewhere"]
    with db.uow(read_only=True) as uow:
        bundles, counts = uow.records.bundles_to_judge(Selection(), None, count_therapists=False)
        assert [b.session.id for b in bundles] == ["with-exit", "with-concern"]
        assert counts == {}
