"""Face-to-face time: gross and net minutes, exit clipping and union, exit durations."""

from hypothesis import given
from hypothesis import strategies as st

from stepout.domain.facetime import (
    ExitSpan,
    absent_micros,
    exit_duration,
    gross_minutes,
    net_minutes,
)
from stepout.domain.instants import MICROS_PER_MINUTE, MICROS_PER_SECOND

M = MICROS_PER_MINUTE
S = MICROS_PER_SECOND
T0 = 1_700_000_000 * S  # a session start, 2023-11-14T22:13:20Z
END = T0 + 50 * M  # a 50-minute session


# --- gross minutes -------------------------------------------------------------------------


def test_gross_minutes_are_whole_minutes_rounded_down() -> None:
    assert gross_minutes(T0, T0 + 50 * M + 59 * S) == 50
    assert gross_minutes(T0, T0 + M - 1) == 0
    assert gross_minutes(T0, T0 + M) == 1


def test_gross_minutes_of_an_end_not_after_start_are_zero() -> None:
    assert gross_minutes(T0, T0) == 0
    assert gross_minutes(T0, T0 - 10 * M) == 0


# --- net minutes: plain examples ----------------------------------------------------------


def test_net_minutes_without_exits_equal_gross() -> None:
    assert net_minutes(T0, END, []) == 50
    assert net_minutes(T0, END, ()) == gross_minutes(T0, END)


def test_a_returned_exit_is_subtracted() -> None:
    assert net_minutes(T0, END, [(T0 + 10 * M, T0 + 14 * M)]) == 46


def test_net_minutes_round_down_after_subtracting_the_absence() -> None:
    # 50 min minus 30 s is 49 min 30 s: 49 whole minutes.
    assert net_minutes(T0, END, [(T0 + 10 * M, T0 + 10 * M + 30 * S)]) == 49


def test_an_exit_that_never_returned_lasts_to_session_end() -> None:
    assert absent_micros(T0, END, [(T0 + 40 * M, None)]) == 10 * M
    assert net_minutes(T0, END, [(T0 + 40 * M, None)]) == 40


def test_an_exit_returning_after_session_end_is_clipped_to_the_end() -> None:
    assert net_minutes(T0, END, [(T0 + 45 * M, END + 20 * M)]) == 45


def test_an_exit_begun_before_session_start_is_clipped_to_the_start() -> None:
    assert net_minutes(T0, END, [(T0 - 5 * M, T0 + 3 * M)]) == 47


def test_an_exit_spanning_the_whole_session_leaves_zero_minutes() -> None:
    assert net_minutes(T0, END, [(T0 - M, END + M)]) == 0
    assert net_minutes(T0, END, [(T0 - M, None)]) == 0


def test_exits_entirely_outside_the_session_change_nothing() -> None:
    outside = [(T0 - 20 * M, T0 - 10 * M), (END + M, END + 5 * M), (END + M, None), (T0 - M, T0)]
    assert absent_micros(T0, END, outside) == 0
    assert net_minutes(T0, END, outside) == 50


def test_overlapping_exits_count_once() -> None:
    exits = [(T0 + 10 * M, T0 + 20 * M), (T0 + 15 * M, T0 + 25 * M)]
    assert absent_micros(T0, END, exits) == 15 * M
    assert net_minutes(T0, END, exits) == 35


def test_a_nested_exit_adds_nothing() -> None:
    exits = [(T0 + 10 * M, T0 + 30 * M), (T0 + 12 * M, T0 + 13 * M)]
    assert absent_micros(T0, END, exits) == 20 * M


def test_duplicated_exits_count_once() -> None:
    exits = [(T0 + 10 * M, T0 + 15 * M)] * 3
    assert absent_micros(T0, END, exits) == 5 * M


def test_touching_and_disjoint_exits_add_up() -> None:
    exits = [(T0 + 30 * M, T0 + 32 * M), (T0 + 10 * M, T0 + 12 * M), (T0 + 12 * M, T0 + 15 * M)]
    assert absent_micros(T0, END, exits) == 7 * M


def test_an_open_exit_overlapping_a_returned_one_counts_once() -> None:
    exits = [(T0 + 44 * M, T0 + 46 * M), (T0 + 40 * M, None)]
    assert absent_micros(T0, END, exits) == 10 * M


def test_a_reversed_exit_counts_as_nothing() -> None:
    assert absent_micros(T0, END, [(T0 + 20 * M, T0 + 10 * M)]) == 0


def test_exits_may_come_from_a_generator() -> None:
    spans = ((T0 + k * 10 * M, T0 + k * 10 * M + M) for k in range(3))
    assert absent_micros(T0, END, spans) == 3 * M


def test_net_minutes_of_an_end_not_after_start_are_zero() -> None:
    assert net_minutes(T0, T0 - M, [(T0 - 2 * M, None)]) == 0


# --- exit duration -------------------------------------------------------------------------


def test_exit_duration_of_a_returned_exit_runs_to_its_return() -> None:
    assert exit_duration(T0 + 10 * M, T0 + 16 * M, END) == 6 * M


def test_exit_duration_of_an_open_exit_runs_to_session_end() -> None:
    assert exit_duration(T0 + 40 * M, None, END) == 10 * M


def test_exit_duration_is_not_clipped_to_the_session_end_when_returned() -> None:
    assert exit_duration(T0 + 45 * M, END + 15 * M, END) == 20 * M


def test_exit_duration_is_never_negative() -> None:
    assert exit_duration(T0 + 20 * M, T0 + 10 * M, END) == 0
    assert exit_duration(END + M, None, END) == 0


# --- properties ------------------------------------------------------------------------------

HOUR = 60 * M
starts = st.integers(min_value=T0 - 1000 * HOUR, max_value=T0 + 1000 * HOUR)
lengths = st.integers(min_value=-HOUR, max_value=4 * HOUR)
offsets = st.integers(min_value=-2 * HOUR, max_value=6 * HOUR)


@st.composite
def sessions_with_exits(draw: st.DrawFn) -> tuple[int, int, list[ExitSpan]]:
    """A session `[start, end]` and exits around it (some open, some partly or wholly outside)."""
    start = draw(starts)
    end = start + draw(lengths)
    exits: list[ExitSpan] = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        left = start + draw(offsets)
        back = draw(st.none() | st.integers(min_value=-HOUR, max_value=2 * HOUR).map(left.__add__))
        exits.append((left, back))
    return start, end, exits


@given(sessions_with_exits())
def test_net_minutes_are_never_negative_nor_above_gross(
    case: tuple[int, int, list[ExitSpan]],
) -> None:
    start, end, exits = case
    assert 0 <= net_minutes(start, end, exits) <= gross_minutes(start, end)


@given(sessions_with_exits())
def test_absence_never_exceeds_the_session(case: tuple[int, int, list[ExitSpan]]) -> None:
    start, end, exits = case
    assert 0 <= absent_micros(start, end, exits) <= max(end - start, 0)


@given(sessions_with_exits(), st.data())
def test_net_minutes_do_not_depend_on_exit_order(
    case: tuple[int, int, list[ExitSpan]], data: st.DataObject
) -> None:
    start, end, exits = case
    shuffled = data.draw(st.permutations(exits))
    assert absent_micros(start, end, shuffled) == absent_micros(start, end, exits)
    assert net_minutes(start, end, shuffled) == net_minutes(start, end, exits)


@given(sessions_with_exits())
def test_duplicated_exits_are_counted_once(case: tuple[int, int, list[ExitSpan]]) -> None:
    start, end, exits = case
    assert absent_micros(start, end, exits + exits) == absent_micros(start, end, exits)
    assert net_minutes(start, end, exits * 3) == net_minutes(start, end, exits)


@given(sessions_with_exits(), st.data())
def test_exits_entirely_outside_the_session_change_nothing_property(
    case: tuple[int, int, list[ExitSpan]], data: st.DataObject
) -> None:
    start, end, exits = case
    before = st.integers(min_value=start - 3 * HOUR, max_value=start).flatmap(
        lambda back: st.tuples(st.integers(min_value=back - HOUR, max_value=back), st.just(back))
    )
    last = max(start, end)
    after = st.integers(min_value=last, max_value=last + 3 * HOUR).flatmap(
        lambda left: st.tuples(st.just(left), st.none() | st.just(left + HOUR))
    )
    outside: list[ExitSpan] = data.draw(st.lists(before | after, max_size=4))
    assert absent_micros(start, end, exits + outside) == absent_micros(start, end, exits)
    assert net_minutes(start, end, outside + exits) == net_minutes(start, end, exits)


@given(
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=0, max_value=60),
    st.lists(
        st.tuples(st.integers(min_value=-10, max_value=70), st.none() | st.integers(-10, 70)),
        max_size=6,
    ),
)
def test_absence_matches_counting_covered_instants(
    start: int, length: int, exits: list[tuple[int, int | None]]
) -> None:
    end = start + length
    covered: set[int] = set()
    for left, back in exits:
        covered.update(range(max(left, start), min(end if back is None else back, end)))
    assert absent_micros(start, end, exits) == len(covered)
