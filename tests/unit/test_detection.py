"""The detector of exits nobody declared, with plain data: badges, doors, sensors going
offline, video calls, duplicates and observations out of order. Every id is synthetic."""

import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from stepout.domain.detection import (
    Decision,
    Detector,
    ExitBegins,
    ExitEnds,
    Thresholds,
    Watched,
)
from stepout.domain.instants import MICROS_PER_SECOND
from stepout.domain.presence import (
    BadgeSeen,
    CallPresence,
    DoorChanged,
    Observation,
    OccupancyChanged,
    SensorAvailability,
    SensorsConfig,
)

S = MICROS_PER_SECOND
T0 = 1_800_000_000 * S  # the detector's start
TIMEOUT = 60 * S
RULES = Thresholds(away_timeout=TIMEOUT, max_distance=5.0, reorder_window=0)
IN_ROOM = Watched("s1", "t1", "r1", telehealth=False, start=T0)
CALL = Watched("s2", "t2", "video", telehealth=True, start=T0)


def seen(at: int, room: str = "r1", distance: float | None = 1.0, who: str = "t1") -> BadgeSeen:
    return BadgeSeen(who, room, distance, at)


@dataclass
class Run:
    """A detector, and every decision it made."""

    rules: Thresholds = RULES
    sessions: tuple[Watched, ...] = (IN_ROOM,)
    detector: Detector = field(init=False)
    decisions: list[Decision] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.detector = Detector(self.rules, since=T0)
        self.decisions += self.detector.watch(self.sessions)

    def feed(self, *observations: Observation, until: int | None = None) -> list[Decision]:
        for o in observations:
            self.detector.observe(o)
        made = self.detector.tick(until if until is not None else max(o.at for o in observations))
        self.decisions += made
        return made

    def at(self, when: int) -> list[Decision]:
        made = self.detector.tick(when)
        self.decisions += made
        return made


def test_a_badge_unseen_for_longer_than_the_timeout_is_an_exit_from_its_last_sighting() -> None:
    run = Run()
    run.feed(seen(T0 + 5 * S), seen(T0 + 10 * S))
    assert run.at(T0 + 10 * S + TIMEOUT) == []  # exactly the timeout: not longer
    assert run.at(T0 + 10 * S + TIMEOUT + 1) == [ExitBegins("s1", "t1", T0 + 10 * S)]
    assert run.at(T0 + 20 * TIMEOUT) == []  # one exit, however long the absence
    back = T0 + 30 * TIMEOUT
    assert run.feed(seen(back)) == [ExitEnds("s1", "t1", T0 + 10 * S, back)]


def test_a_badge_seen_regularly_is_no_exit() -> None:
    run = Run()
    run.feed(*(seen(T0 + k * 20 * S) for k in range(100)), until=T0 + 2000 * S)
    assert run.decisions == []


def test_silence_before_the_detector_started_or_the_session_began_is_not_counted() -> None:
    later = Watched("s1", "t1", "r1", telehealth=False, start=T0 + 500 * S)
    run = Run(sessions=(later,))
    assert run.at(T0 + 500 * S + TIMEOUT) == []
    assert run.at(T0 + 500 * S + TIMEOUT + 1) == [ExitBegins("s1", "t1", T0 + 500 * S)]


def test_a_far_sighting_counts_as_not_seen() -> None:
    run = Run()
    run.feed(seen(T0 + 5 * S), *(seen(T0 + k * S, distance=9.5) for k in range(6, 80)))
    assert run.decisions == [ExitBegins("s1", "t1", T0 + 5 * S)]
    assert run.detector.counts.unused == 74


def test_a_sighting_without_a_distance_counts_as_seen() -> None:
    run = Run()
    run.feed(*(seen(T0 + k * 30 * S, distance=None) for k in range(10)))
    assert run.decisions == []


def test_a_badge_seen_in_another_room_is_out_sooner() -> None:
    run = Run()
    run.feed(seen(T0 + 5 * S), seen(T0 + 8 * S, room="r2"), until=T0 + 15 * S)
    assert run.decisions == []  # the elsewhere wait (10 s) has not passed
    assert run.at(T0 + 15 * S + 1) == [ExitBegins("s1", "t1", T0 + 5 * S)]
    back = T0 + 40 * S
    assert run.feed(seen(back - S, room="r2"), seen(back)) == [
        ExitEnds("s1", "t1", T0 + 5 * S, back)
    ]


def test_doors_corroborate_the_times() -> None:
    run = Run()
    opened, shut = T0 + 12 * S, T0 + 200 * S
    run.feed(
        seen(T0 + 10 * S),
        DoorChanged("d1", "r1", closed=False, at=opened),
        DoorChanged("d1", "r1", closed=True, at=T0 + 14 * S),
        until=T0 + 100 * S,
    )
    assert run.decisions == [ExitBegins("s1", "t1", opened)]
    run.feed(
        DoorChanged("d1", "r1", closed=False, at=shut - 3 * S),
        DoorChanged("d1", "r1", closed=True, at=shut),
        seen(shut + 4 * S),
    )
    assert run.decisions[-1] == ExitEnds("s1", "t1", opened, shut)


def test_a_door_of_another_room_or_long_before_corroborates_nothing() -> None:
    run = Run()
    run.feed(
        DoorChanged("d1", "r1", closed=False, at=T0 + 2 * S),  # 38 s before the last sighting
        DoorChanged("d2", "r2", closed=False, at=T0 + 41 * S),
        seen(T0 + 40 * S),
        until=T0 + 200 * S,
    )
    assert run.decisions == [ExitBegins("s1", "t1", T0 + 40 * S)]


def test_no_exit_while_a_sensor_of_the_room_is_offline() -> None:
    run = Run()
    run.feed(
        seen(T0 + 5 * S),
        SensorAvailability("rx-r1", "r1", online=False, at=T0 + 6 * S),
        until=T0 + 3600 * S,
    )
    assert run.decisions == []
    assert not run.detector.available("r1")
    # Back online: a full timeout of observation first; the silence offline is not counted.
    back_online = T0 + 3600 * S
    run.feed(SensorAvailability("rx-r1", "r1", online=True, at=back_online))
    assert run.at(back_online + TIMEOUT) == []
    assert run.at(back_online + TIMEOUT + 1) == [ExitBegins("s1", "t1", back_online)]


def test_the_room_is_available_again_only_when_every_sensor_is_back() -> None:
    run = Run()
    run.feed(
        SensorAvailability("rx-r1", "r1", online=False, at=T0 + 1 * S),
        SensorAvailability("door-r1", "r1", online=False, at=T0 + 2 * S),
        SensorAvailability("rx-r1", "r1", online=True, at=T0 + 3 * S),
        until=T0 + 1000 * S,
    )
    assert run.decisions == []
    run.feed(SensorAvailability("door-r1", "r1", online=True, at=T0 + 1000 * S))
    assert run.at(T0 + 1000 * S + TIMEOUT + 1) == [ExitBegins("s1", "t1", T0 + 1000 * S)]


def test_another_rooms_sensor_offline_changes_nothing_here() -> None:
    run = Run()
    run.feed(seen(T0 + 1 * S), SensorAvailability("rx-r2", "r2", online=False, at=T0 + 2 * S))
    assert run.at(T0 + S + TIMEOUT + 1) == [ExitBegins("s1", "t1", T0 + 1 * S)]


def test_duplicates_and_stale_repeats_change_nothing() -> None:
    run = Run()
    first = seen(T0 + 10 * S)
    run.feed(first, first, seen(T0 + 9 * S), until=T0 + 10 * S + TIMEOUT + 1)
    assert run.decisions == [ExitBegins("s1", "t1", T0 + 10 * S)]
    back = seen(T0 + 300 * S)
    run.feed(back, back, back)
    assert [d for d in run.decisions if isinstance(d, ExitEnds)] == [
        ExitEnds("s1", "t1", T0 + 10 * S, T0 + 300 * S)
    ]
    assert run.detector.counts.stale == 3


def test_observations_out_of_order_within_the_window_are_put_in_order() -> None:
    rules = Thresholds(away_timeout=TIMEOUT, reorder_window=2 * S)
    run = Run(rules=rules)
    # The sighting at +59 s arrives after the one at +61 s...
    run.feed(seen(T0 + 61 * S + 1), seen(T0 + 59 * S), until=T0 + 62 * S)
    assert run.decisions == []
    run.at(T0 + 200 * S)
    assert run.decisions == [ExitBegins("s1", "t1", T0 + 61 * S + 1)]


def test_a_sighting_later_than_the_window_ends_the_exit_when_it_comes() -> None:
    run = Run()
    run.feed(seen(T0 + 5 * S), until=T0 + 100 * S)
    assert run.decisions == [ExitBegins("s1", "t1", T0 + 5 * S)]
    run.feed(seen(T0 + 90 * S), until=T0 + 101 * S)
    assert run.decisions[-1] == ExitEnds("s1", "t1", T0 + 5 * S, T0 + 90 * S)
    assert run.detector.counts.late == 1


def test_a_session_that_ends_drops_its_open_exit_and_a_new_one_starts_afresh() -> None:
    run = Run()
    run.at(T0 + TIMEOUT + 1)
    assert run.decisions == [ExitBegins("s1", "t1", T0)]
    run.decisions += run.detector.watch([])
    assert run.detector.open_exits() == {}
    run.feed(seen(T0 + 500 * S))  # no session: nothing to end
    later = Watched("s9", "t1", "r2", telehealth=False, start=T0 + 600 * S)
    run.decisions += run.detector.watch([later])
    run.at(T0 + 600 * S + TIMEOUT + 1)
    assert run.decisions[1:] == [ExitBegins("s9", "t1", T0 + 600 * S)]


def test_a_session_watched_late_counts_sightings_made_before() -> None:
    run = Run(sessions=())
    run.feed(seen(T0 + 30 * S), until=T0 + 40 * S)
    run.decisions += run.detector.watch([IN_ROOM])  # learnt of at +40 s; started at T0
    assert run.at(T0 + 30 * S + TIMEOUT) == []
    assert run.at(T0 + 30 * S + TIMEOUT + 1) == [ExitBegins("s1", "t1", T0 + 30 * S)]


def test_telehealth_leaving_the_call_is_an_exit_once_the_timeout_passes() -> None:
    run = Run(sessions=(CALL,))
    run.feed(CallPresence("p1", "s2", present=False, at=T0 + 100 * S))
    assert run.at(T0 + 100 * S + TIMEOUT) == []
    assert run.at(T0 + 100 * S + TIMEOUT + 1) == [ExitBegins("s2", "t2", T0 + 100 * S)]
    run.feed(CallPresence("p1", "s2", present=True, at=T0 + 400 * S))
    assert run.decisions[-1] == ExitEnds("s2", "t2", T0 + 100 * S, T0 + 400 * S)


def test_telehealth_rejoining_within_the_timeout_is_no_exit() -> None:
    run = Run(sessions=(CALL,))
    run.feed(
        CallPresence("p1", "s2", present=False, at=T0 + 100 * S),
        CallPresence("p1", "s2", present=True, at=T0 + 130 * S),
        until=T0 + 3600 * S,
    )
    assert run.decisions == []


def test_badges_do_not_count_for_a_call_nor_calls_for_a_room() -> None:
    run = Run(sessions=(CALL, IN_ROOM))
    for k in range(1, 40):
        run.feed(seen(T0 + k * 10 * S), seen(T0 + k * 10 * S, room="elsewhere", who="t2"))
    run.feed(CallPresence("p1", "s1", present=False, at=T0 + 15 * S), until=T0 + 390 * S)
    assert run.decisions == []  # t2 never left the call; s1 is in person
    assert run.detector.counts.unused == 1


def test_occupancy_is_not_used() -> None:
    run = Run()
    run.feed(
        *(OccupancyChanged("o1", "r1", occupied=k % 2 == 0, at=T0 + k * S) for k in range(50)),
        seen(T0 + 50 * S),
    )
    assert run.decisions == []


def test_thresholds_from_the_sensors_file() -> None:
    config = SensorsConfig(practice="p1", away_timeout=5 * S, max_distance=2.5)
    rules = Thresholds.of(config)
    assert (rules.away_timeout, rules.max_distance, rules.elsewhere_timeout) == (5 * S, 2.5, 5 * S)


# -- Properties, over random streams of a few therapists and rooms.

THERAPISTS = ("t1", "t2", "t3")
ROOMS = ("r1", "r2", "r3")
SESSIONS = tuple(
    Watched(f"s-{t}", t, r, telehealth=False, start=T0)
    for t, r in zip(THERAPISTS, ROOMS, strict=True)
)
PROPERTY_RULES = Thresholds(away_timeout=30 * S, max_distance=5.0, reorder_window=3 * S)


def observation() -> st.SearchStrategy[Observation]:
    at = st.integers(T0, T0 + 900 * S)
    badge = st.builds(
        BadgeSeen,
        st.sampled_from(THERAPISTS),
        st.sampled_from(ROOMS),
        st.one_of(st.none(), st.floats(0.1, 9.0)),
        at,
    )
    door = st.builds(
        DoorChanged, st.sampled_from(ROOMS).map(lambda r: f"door-{r}"), st.just("r1"),
        st.booleans(), at,
    )  # fmt: skip
    availability = st.builds(
        lambda r, online, when: SensorAvailability(f"rx-{r}", r, online, when),
        st.sampled_from(ROOMS),
        st.booleans(),
        at,
    )
    return st.one_of(badge, badge, badge, door, availability)


@st.composite
def stream(draw: st.DrawFn) -> list[Observation]:
    """Each therapist's badge seen every few seconds, mostly in their own room, with gaps
    around the timeout; and doors, receivers going offline and stray sightings at random."""
    found: list[Observation] = []
    for therapist, room in zip(THERAPISTS, ROOMS, strict=True):
        at = T0
        for gap in draw(st.lists(st.integers(1, 45), min_size=5, max_size=40)):
            at += gap * S
            where = draw(st.sampled_from((room, room, room, *ROOMS)))
            found.append(BadgeSeen(therapist, where, draw(st.sampled_from((1.0, 2.5, 7.0))), at))
    found += [_fix_doors(o) for o in draw(st.lists(observation(), max_size=30))]
    return found


def _fix_doors(o: Observation) -> Observation:
    if isinstance(o, DoorChanged):  # each door in its own room
        return DoorChanged(o.sensor, o.sensor.removeprefix("door-"), o.closed, o.at)
    return o


def _exits(decisions: list[Decision]) -> list[tuple[str, int, int | None]]:
    """(session, left_at, returned_at) of each exit, in order."""
    found: list[tuple[str, int, int | None]] = []
    for d in decisions:
        if isinstance(d, ExitBegins):
            found.append((d.session, d.left_at, None))
        else:
            i = max(i for i, x in enumerate(found) if x[0] == d.session and x[2] is None)
            found[i] = (d.session, d.left_at, d.returned_at)
    return found


def _run(stream: list[tuple[int, Observation]], rules: Thresholds, ticks: int) -> list[Decision]:
    """Deliver (arrival, observation) pairs in arrival order, ticking every `ticks` µs."""
    detector = Detector(rules, since=T0)
    out = detector.watch(SESSIONS)
    pending = sorted(stream, key=lambda p: p[0])
    i = 0
    for now in range(T0, T0 + 1000 * S, ticks):
        while i < len(pending) and pending[i][0] <= now:
            detector.observe(pending[i][1])
            i += 1
        out += detector.tick(now)
    return out + detector.tick(T0 + 2000 * S)


def _check_invariants(decisions: list[Decision]) -> None:
    open_by: dict[str, ExitBegins] = {}
    for d in decisions:
        if isinstance(d, ExitBegins):
            assert d.therapist not in open_by, "two open exits for one therapist"
            open_by[d.therapist] = d
        else:
            began = open_by.pop(d.therapist)
            assert began.session == d.session
            assert d.returned_at >= began.left_at


@settings(max_examples=150, deadline=None)
@given(stream(), st.randoms(use_true_random=False))
def test_shuffled_duplicated_delays_within_the_window_give_the_sorted_streams_exits(
    stream: list[Observation], rnd: random.Random
) -> None:
    reference = _run([(o.at, o) for o in stream], PROPERTY_RULES, 1 * S)
    window = PROPERTY_RULES.reorder_window
    delivered = [(o.at + rnd.randint(0, window), o) for o in stream]
    delivered += [(o.at + rnd.randint(0, window), o) for o in rnd.sample(stream, len(stream) // 2)]
    rnd.shuffle(delivered)
    got = _run(delivered, PROPERTY_RULES, rnd.choice((S // 4, S // 2, S, 2 * S)))
    assert _exits(got) == _exits(reference)
    _check_invariants(got)


@settings(max_examples=150, deadline=None)
@given(stream(), st.randoms(use_true_random=False))
def test_any_arrival_order_keeps_one_open_exit_per_therapist_and_sane_times(
    stream: list[Observation], rnd: random.Random
) -> None:
    delivered = [(o.at + rnd.randint(0, 300 * S), o) for o in stream * 2]
    got = _run(delivered, PROPERTY_RULES, S)
    _check_invariants(got)
    for d in got:
        if isinstance(d, ExitBegins):
            assert d.left_at >= T0


@settings(max_examples=150, deadline=None)
@given(stream())
def test_no_exit_begins_in_a_room_while_it_is_offline(raw: list[Observation]) -> None:
    stream = sorted(raw, key=lambda o: o.at)
    # Every room goes offline at the start and some come back: exits only after a full wait of
    # observation online, and never from before it.
    offline = [SensorAvailability(f"rx-{r}", r, False, T0) for r in ROOMS]
    detector = Detector(PROPERTY_RULES, since=T0)
    detector.watch(SESSIONS)
    for o in offline:
        detector.observe(o)
    decisions: list[tuple[int, Decision]] = []
    for o in stream:
        detector.observe(o)
    for now in range(T0, T0 + 1000 * S, S):
        decisions += [(now, d) for d in detector.tick(now)]
    changes: dict[str, list[tuple[int, bool]]] = {r: [(T0, False)] for r in ROOMS}
    last: dict[str, int] = {}
    reports = [o for o in stream if isinstance(o, SensorAvailability)]
    for o in sorted(reports, key=lambda o: (o.at, o.online)):  # at one instant, offline first
        if o.at > last.get(o.sensor, T0):
            last[o.sensor] = o.at
            changes[o.room].append((o.at, o.online))
    online: dict[str, list[tuple[int, int]]] = {}  # room -> [on, off) periods
    for room, seq in changes.items():
        on = None
        for at, up in sorted(seq):
            if up and on is None:
                on = at
            elif not up and on is not None:
                online.setdefault(room, []).append((on, at))
                on = None
        if on is not None:
            online.setdefault(room, []).append((on, 2**62))
    for ticked, d in decisions:
        if not isinstance(d, ExitBegins):
            continue
        room = next(s.room for s in SESSIONS if s.session == d.session)
        judged = ticked - PROPERTY_RULES.reorder_window

        periods = online.get(room, [])
        assert any(_waited(stream, d, room, judged, on, off) for on, off in periods), (
            "an exit began without a full wait observed online"
        )


def _waited(
    stream: list[Observation], d: ExitBegins, room: str, judged: int, on: int, off: int
) -> bool:
    """Whether `d` follows a full wait observed while `room` was online from `on` (until
    `off`), judged by `judged`, and lies after `on`."""
    elsewhere = any(
        isinstance(o, BadgeSeen)
        and o.therapist == d.therapist
        and o.room != room
        and (o.distance is None or o.distance <= PROPERTY_RULES.max_distance)
        and on <= o.at <= judged
        for o in stream
    )
    wait = PROPERTY_RULES.elsewhere_timeout if elsewhere else PROPERTY_RULES.away_timeout
    return on + wait < min(off, judged) and d.left_at >= on
