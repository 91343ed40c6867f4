"""A session's timeline: present segments and gaps as fractions, overlapping exits, an exit
that never returned, a session in progress, net minutes against the billed codes."""

import pytest

from stepout.domain.billing import reconcile
from stepout.domain.instants import MICROS_PER_MINUTE, MICROS_PER_SECOND
from stepout.domain.records import Exit, Session
from stepout.domain.timeline import build

M = MICROS_PER_MINUTE
T0 = 1_700_000_000 * MICROS_PER_SECOND


def session(end: int | None = T0 + 60 * M, codes: tuple[str, ...] = ("90837",)) -> Session:
    return Session("s-1", "p-1", "t-1", "c-1", "room-1", "in_person", T0, end, codes)


def exit_(xid: str, left: int, back: int | None, **fields: object) -> Exit:
    return Exit(
        xid,
        "s-1",
        "declared",
        T0 + left * M,
        returned_at=None if back is None else T0 + back * M,
        **fields,
    )  # type: ignore[arg-type]


def test_no_exit_is_one_present_segment_and_supports_the_code() -> None:
    t = build(session(), [], now=T0 + 90 * M)
    assert [(p.start, p.end) for p in t.present] == [(0.0, 1.0)]
    assert t.gaps == ()
    assert (t.gross_minutes, t.net_minutes) == (60, 60)
    assert t.supported_codes == ("90837",)
    assert t.billing_status == "supported"


def test_one_exit_is_a_gap_between_two_present_segments() -> None:
    x = exit_(
        "x-1",
        15,
        30,
        reason="technical",
        client_informed="before_leaving",
        explanation="  Back soon. ",
        safeguards=frozenset({"door_closed", "records_secured"}),
        checked_in=True,
        signed_at=T0 + 70 * M,
    )
    t = build(session(), [x], now=T0 + 90 * M, amendments={"x-1": [T0 + 80 * M, T0 + 75 * M]})
    assert [(p.start, p.end) for p in t.present] == [(0.0, 0.25), (0.5, 1.0)]
    (g,) = t.gaps
    assert g.segment is not None
    assert (g.segment.start, g.segment.end) == (0.25, 0.5)
    assert g.segment.width == 0.25
    assert (g.number, g.reason, g.returned, g.overlaps) == (1, "technical", True, False)
    assert g.explanation == "Back soon."
    assert g.safeguards == ("records_secured", "door_closed")  # the protocol's order
    assert g.checked_in
    assert g.signed_at == T0 + 70 * M
    assert g.amendments == (T0 + 75 * M, T0 + 80 * M)
    assert t.net_minutes == 45
    assert t.supported_codes == ("90834",)
    assert t.billing_status == "unsupported"


def test_the_explanation_is_left_out_when_the_reader_may_not_see_it() -> None:
    x = exit_("x-1", 15, 30, client_informed="after_return", explanation="Sorry.")
    (g,) = build(session(), [x], now=T0, show_explanation=False).gaps
    assert g.explanation is None
    assert g.client_informed == "after_return"


def test_overlapping_exits_are_flagged_and_counted_once() -> None:
    a = exit_("x-a", 10, 30, reason="technical")
    b = exit_("x-b", 20, 40, reason="client_safety", ems="called", client_attended_by="Dr Lee")
    c = exit_("x-c", 50, 52, reason="other")
    t = build(session(), [b, c, a], now=T0)
    assert [g.exit_id for g in t.gaps] == ["x-a", "x-b", "x-c"]  # in order of leaving
    assert [g.overlaps for g in t.gaps] == [True, True, False]
    assert [(p.start_at, p.end_at) for p in t.present] == [
        (T0, T0 + 10 * M),
        (T0 + 40 * M, T0 + 50 * M),
        (T0 + 52 * M, T0 + 60 * M),
    ]
    assert t.net_minutes == 60 - 30 - 2
    assert t.gaps[1].ems == "called"
    assert t.gaps[1].attended_by == "Dr Lee"


def test_an_exit_that_never_returned_lasts_to_the_session_end() -> None:
    x = exit_("x-1", 45, None, reason="health_emergency")
    t = build(session(), [x], now=T0 + 200 * M)
    (g,) = t.gaps
    assert not g.returned
    assert g.segment is not None
    assert (g.segment.start, g.segment.end) == (0.75, 1.0)
    assert [(p.start, p.end) for p in t.present] == [(0.0, 0.75)]
    assert t.net_minutes == 45


def test_a_session_in_progress_runs_to_now_and_is_not_judged_for_billing() -> None:
    x = exit_("x-1", 10, None, reason="technical")
    t = build(session(end=None), [x], now=T0 + 20 * M)
    assert t.in_progress
    assert t.end == T0 + 20 * M
    (g,) = t.gaps
    assert g.segment is not None
    assert (g.segment.start, g.segment.end) == (0.5, 1.0)
    assert t.net_minutes == 10
    assert t.gross_minutes == 20
    assert t.billing_status is None


def test_exits_outside_the_session_are_clipped_or_have_no_segment() -> None:
    early = exit_("x-1", -10, 5)
    late = exit_("x-2", 70, 80)
    t = build(session(), [early, late], now=T0)
    assert t.gaps[0].segment is not None
    assert (t.gaps[0].segment.start, t.gaps[0].segment.end) == (0.0, pytest.approx(5 / 60))
    assert t.gaps[1].segment is None
    assert t.net_minutes == 55


def test_exits_of_another_session_are_ignored() -> None:
    other = Exit("x-9", "s-2", "declared", T0 + 10 * M, returned_at=T0 + 20 * M)
    t = build(session(), [other], now=T0)
    assert t.gaps == ()
    assert t.net_minutes == 60


def test_net_minutes_and_status_match_billing() -> None:
    s = session(codes=("90834", "90785"))
    exits = [exit_("x-1", 5, 12), exit_("x-2", 10, 20), exit_("x-3", 58, None)]
    t = build(s, exits, now=T0)
    line = reconcile(s, exits)
    assert (t.net_minutes, t.gross_minutes) == (line.net_minutes, line.gross_minutes)
    assert t.supported_codes == line.supported_codes
    assert t.billing_status == line.status
    widths = sum(p.width for p in t.present)
    assert widths == pytest.approx(t.net_minutes / t.gross_minutes, abs=1 / 60)
