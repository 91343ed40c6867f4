"""Billed CPT codes against net face-to-face minutes: thresholds, families, statuses, reconcile."""

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepout.domain.billing import (
    BillingLine,
    billing_status,
    minimum_net_minutes,
    reconcile,
    supported_codes,
    unsupported_codes,
)
from stepout.domain.facetime import net_minutes
from stepout.domain.instants import MICROS_PER_MINUTE, MICROS_PER_SECOND
from stepout.domain.records import Exit, Session

M = MICROS_PER_MINUTE
T0 = 1_700_000_000 * MICROS_PER_SECOND
PSYCHOTHERAPY = {"90832", "90834", "90837"}
WITH_EM = {"90833", "90836", "90838"}
CRISIS = {"90839", "90840"}


def session(minutes: int | None, *codes: str, sid: str = "s1") -> Session:
    end = None if minutes is None else T0 + minutes * M
    return Session(sid, "p1", "t-007", "client-0042", "r1", "telehealth", T0, end, codes)


def exit_(left_min: float, back_min: float | None, eid: str = "e1", sid: str = "s1") -> Exit:
    back = None if back_min is None else T0 + int(back_min * M)
    return Exit(eid, sid, "declared", T0 + int(left_min * M), returned_at=back)


# --- thresholds ------------------------------------------------------------------------------

THRESHOLDS = [
    (("90832",), 16),
    (("90833",), 16),
    (("90834",), 38),
    (("90836",), 38),
    (("90837",), 53),
    (("90838",), 53),
    (("90839",), 30),
    (("90839", "90840"), 75),
    (("90839", "90840", "90840"), 105),
    (("90839", "90840", "90840", "90840"), 135),
]


@pytest.mark.parametrize(("billed", "minimum"), THRESHOLDS)
def test_a_code_is_unsupported_one_minute_below_its_minimum(
    billed: tuple[str, ...], minimum: int
) -> None:
    assert billing_status(billed, minimum - 1) == "unsupported"
    assert unsupported_codes(billed, minimum - 1) == (billed[-1],)


@pytest.mark.parametrize(("billed", "minimum"), THRESHOLDS)
def test_a_code_is_supported_at_its_minimum(billed: tuple[str, ...], minimum: int) -> None:
    assert billing_status(billed, minimum) == "supported"
    assert unsupported_codes(billed, minimum) == ()
    assert supported_codes(billed, minimum) == billed


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (0, ()),
        (15, ()),
        (16, ("90832",)),
        (37, ("90832",)),
        (38, ("90834",)),
        (52, ("90834",)),
        (53, ("90837",)),
        (240, ("90837",)),
    ],
)
def test_an_unbilled_session_is_shown_the_psychotherapy_code_reached(
    net: int, expected: tuple[str, ...]
) -> None:
    assert supported_codes((), net) == expected
    assert billing_status((), net) == "not_billed"


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (15, ()),
        (16, ("90833",)),
        (37, ("90833",)),
        (38, ("90836",)),
        (52, ("90836",)),
        (53, ("90838",)),
    ],
)
def test_the_em_family_is_shown_its_own_highest_code(net: int, expected: tuple[str, ...]) -> None:
    assert supported_codes(("90833",), net) == expected


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (29, ()),
        (30, ("90839",)),
        (74, ("90839",)),
        (75, ("90839", "90840")),
        (104, ("90839", "90840")),
        (105, ("90839", "90840", "90840")),
        (134, ("90839", "90840", "90840")),
        (135, ("90839", "90840", "90840", "90840")),
        (400, ("90839",) + ("90840",) * 11),
    ],
)
def test_crisis_minutes_reach_90839_then_one_90840_unit_per_30_minutes(
    net: int, expected: tuple[str, ...]
) -> None:
    assert supported_codes(("90839",), net) == expected


# --- statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("billed", "net"),
    [
        (("90832",), 38),
        (("90834",), 53),
        (("90833",), 60),
        (("90839",), 75),
        (("90839", "90840"), 105),
    ],
)
def test_minutes_reaching_a_higher_code_of_the_billed_family_are_undercoded(
    billed: tuple[str, ...], net: int
) -> None:
    assert billing_status(billed, net) == "undercoded"
    assert unsupported_codes(billed, net) == ()


def test_unsupported_takes_precedence_over_undercoded() -> None:
    billed = ("90832", "90839", "90840")  # 90832 undercoded at 60, the 90840 unit short
    assert billing_status(billed, 60) == "unsupported"
    assert unsupported_codes(billed, 60) == ("90840",)


@pytest.mark.parametrize("billed", [(), ("90785",), ("99213",), ("99213", "90785")])
def test_a_session_with_no_time_based_code_billed_is_not_billed(billed: tuple[str, ...]) -> None:
    assert billing_status(billed, 60) == "not_billed"
    assert unsupported_codes(billed, 0) == ()


def test_codes_stepout_does_not_know_are_ignored() -> None:
    assert supported_codes(("99213", "90834"), 40) == ("90834",)
    assert billing_status(("99213", "90834"), 40) == "supported"


# --- families ---------------------------------------------------------------------------------


def test_supported_codes_never_name_a_family_that_was_not_billed() -> None:
    assert supported_codes(("90838",), 60) == ("90838",)
    assert supported_codes(("90839",), 60) == ("90839",)
    assert supported_codes(("90839",), 20) == ()


def test_each_billed_family_gets_its_own_code_in_family_order() -> None:
    billed = ("90839", "90836", "90834")
    assert supported_codes(billed, 40) == ("90834", "90836", "90839")
    assert billing_status(billed, 40) == "supported"


# --- 90785 ------------------------------------------------------------------------------------


def test_the_add_on_is_echoed_after_the_time_based_codes() -> None:
    assert supported_codes(("90785", "90837"), 60) == ("90837", "90785")
    assert supported_codes(("90785", "90839", "90840"), 80) == ("90839", "90840", "90785")


def test_the_add_on_is_echoed_once_and_is_never_unsupported() -> None:
    assert supported_codes(("90785", "90785"), 0) == ("90785",)
    assert unsupported_codes(("90785", "90837"), 0) == ("90837",)


def test_the_add_on_alone_shows_the_psychotherapy_code_reached() -> None:
    assert supported_codes(("90785",), 20) == ("90832", "90785")
    assert billing_status(("90785",), 20) == "not_billed"


# --- odd cases --------------------------------------------------------------------------------


def test_90840_without_90839_is_undercoded_when_its_unit_is_reached() -> None:
    assert supported_codes(("90840",), 80) == ("90839", "90840")
    assert unsupported_codes(("90840",), 80) == ()
    assert billing_status(("90840",), 80) == "undercoded"


def test_90840_without_90839_is_unsupported_below_its_unit_minimum() -> None:
    assert supported_codes(("90840",), 60) == ("90839",)
    assert unsupported_codes(("90840",), 60) == ("90840",)
    assert billing_status(("90840",), 60) == "unsupported"
    assert supported_codes(("90840",), 20) == ()


def test_two_codes_of_one_family_are_each_judged_and_one_code_is_supported() -> None:
    assert supported_codes(("90832", "90837"), 60) == ("90837",)
    assert billing_status(("90832", "90837"), 60) == "supported"
    assert unsupported_codes(("90832", "90837"), 40) == ("90837",)
    assert billing_status(("90832", "90837"), 40) == "unsupported"
    assert billing_status(("90832", "90834"), 60) == "undercoded"


def test_a_repeated_90839_is_judged_like_one() -> None:
    assert supported_codes(("90839", "90839"), 40) == ("90839",)
    assert billing_status(("90839", "90839"), 40) == "supported"


def test_unsupported_codes_keep_billed_order_and_number_90840_units_in_it() -> None:
    billed = ("90840", "90837", "90839", "90840")
    assert unsupported_codes(billed, 20) == billed
    assert unsupported_codes(billed, 60) == ("90840", "90840")  # units 1 (75) and 2 (105)
    assert unsupported_codes(billed, 80) == ("90840",)
    assert unsupported_codes(billed, 105) == ()


# --- reconcile ---------------------------------------------------------------------------------


def test_reconcile_a_session_without_exits() -> None:
    assert reconcile(session(55, "90837"), []) == BillingLine(
        "s1", 55, 55, ("90837",), ("90837",), "supported"
    )


def test_reconcile_subtracts_exits_and_flags_the_code_they_undercut() -> None:
    line = reconcile(session(55, "90837"), [exit_(10, 14)])
    assert (line.gross_minutes, line.net_minutes) == (55, 51)
    assert line.supported_codes == ("90834",)
    assert line.status == "unsupported"


def test_reconcile_counts_an_open_exit_to_session_end() -> None:
    line = reconcile(session(55, "90834"), [exit_(45, None)])
    assert line.net_minutes == 45
    assert line.status == "supported"


def test_reconcile_clips_exits_to_the_session_and_counts_overlaps_once() -> None:
    exits = [exit_(-5, 2, "e1"), exit_(50, 70, "e2"), exit_(20, 25, "e3"), exit_(22, 24, "e4")]
    line = reconcile(session(55, "90834"), exits)
    assert line.net_minutes == 55 - 2 - 5 - 5


def test_reconcile_of_an_unbilled_session() -> None:
    line = reconcile(session(30), [])
    assert line.billed_codes == ()
    assert line.supported_codes == ("90832",)
    assert line.status == "not_billed"


def test_reconcile_refuses_a_session_still_in_progress() -> None:
    with pytest.raises(ValueError, match="s1 has no end"):
        reconcile(session(None, "90837"), [])


def test_reconcile_refuses_an_exit_of_another_session() -> None:
    with pytest.raises(ValueError, match="exit e9 is of session s2"):
        reconcile(session(55, "90837"), [exit_(10, 12, "e9", "s2")])


# --- properties ----------------------------------------------------------------------------------

codes = st.lists(
    st.sampled_from(["90832", "90833", "90834", "90836", "90837", "90838", "90839", "90840"])
    | st.sampled_from(["90785", "99213"]),
    max_size=6,
)
nets = st.integers(min_value=0, max_value=300)


def families(billed: Sequence[str]) -> set[str]:
    named = set(billed)
    return {
        name
        for name, members in (("psy", PSYCHOTHERAPY), ("em", WITH_EM), ("crisis", CRISIS))
        if named & members
    }


@given(codes, nets)
def test_status_is_unsupported_exactly_when_some_code_is_unsupported(
    billed: list[str], net: int
) -> None:
    assert (billing_status(billed, net) == "unsupported") == bool(unsupported_codes(billed, net))


@given(codes, nets)
def test_supported_codes_stay_within_the_billed_families(billed: list[str], net: int) -> None:
    billed_families = families(billed)
    if billed_families:
        assert families(supported_codes(billed, net)) <= billed_families
    else:
        assert families(supported_codes(billed, net)) <= {"psy"}


@given(codes, nets)
def test_billing_the_supported_codes_is_supported(billed: list[str], net: int) -> None:
    supported = supported_codes(billed, net)
    expected = "supported" if families(supported) else "not_billed"
    assert billing_status(supported, net) == expected


@given(codes, nets)
def test_unsupported_codes_are_billed_codes_in_billed_order(billed: list[str], net: int) -> None:
    short = list(unsupported_codes(billed, net))
    remaining = iter(billed)
    assert all(code in remaining for code in short)  # a subsequence of the billed codes


@given(codes, nets)
def test_codes_are_judged_alike_as_a_list_or_a_tuple(billed: list[str], net: int) -> None:
    as_tuple = tuple(billed)
    assert supported_codes(as_tuple, net) == supported_codes(billed, net)
    assert unsupported_codes(as_tuple, net) == unsupported_codes(billed, net)
    assert billing_status(as_tuple, net) == billing_status(billed, net)


@given(
    st.integers(min_value=-5, max_value=120),
    st.lists(
        st.tuples(
            st.floats(min_value=-20, max_value=140, allow_nan=False),
            st.none() | st.floats(min_value=-20, max_value=140, allow_nan=False),
        ),
        max_size=5,
    ),
    codes,
)
def test_reconcile_agrees_with_the_parts(
    minutes: int, spans: list[tuple[float, float | None]], billed: list[str]
) -> None:
    exits = [exit_(left, back, f"e{k}") for k, (left, back) in enumerate(spans)]
    line = reconcile(session(minutes, *billed), exits)
    assert line.session == "s1"
    assert line.billed_codes == tuple(billed)
    assert line.net_minutes == net_minutes(
        T0, T0 + minutes * M, [(e.left_at, e.returned_at) for e in exits]
    )
    assert line.supported_codes == supported_codes(billed, line.net_minutes)
    assert line.status == billing_status(billed, line.net_minutes)


@given(
    billed=st.lists(
        st.sampled_from(
            [
                "90832",
                "90833",
                "90834",
                "90836",
                "90837",
                "90838",
                "90839",
                "90840",
                "90785",
                "99213",
            ]
        ),
        max_size=6,
    ),
    net=st.integers(min_value=0, max_value=300),
)
def test_minimum_net_minutes_is_exactly_where_codes_stop_being_unsupported(
    billed: list[str], net: int
) -> None:
    assert (unsupported_codes(billed, net) == ()) == (net >= minimum_net_minutes(billed))
