"""The simulator's schedule, without a broker: what a newcomer's demo will show, and that the
traffic it publishes is what the parser understands."""

import itertools

import pytest

from stepout.adapters.mqtt.parsing import Parser
from stepout.adapters.mqtt.simulator import (
    CORRIDOR,
    FIRST_WALKOUT_S,
    Message,
    Simulation,
    layout,
    layout_from_config,
)
from stepout.domain.presence import BadgeSeen, DoorChanged, SensorAvailability, SensorsConfig

LAYOUT = layout("demo", [(f"t-{i:03d}", f"room-{i:02d}") for i in range(1, 5)])


def run(simulation: Simulation, until: float) -> list[tuple[float, Message]]:
    out: list[tuple[float, Message]] = []
    t = 0.0
    while t <= until:
        out.extend((t, m) for m in simulation.due(t))
        t += 0.1
    return out


def parsed(messages: list[tuple[float, Message]]) -> list[tuple[float, object]]:
    parser = Parser(LAYOUT.sensors_config())
    return [(t, parser.parse(m.topic, m.payload, round(t * 1e6))) for t, m in messages]


def test_every_message_is_understood() -> None:
    sim = Simulation(LAYOUT, seed=3, walkout_every_s=30, outage_every_s=60)
    results = parsed(run(sim, 400))
    reasons = {r for _, r in results if isinstance(r, str)}
    assert reasons == set()  # the corridor receiver is a room of its own, not an error
    assert any(isinstance(r, BadgeSeen) and r.room == CORRIDOR for _, r in results)


def test_badges_are_seen_in_their_rooms_every_few_seconds() -> None:
    sim = Simulation(LAYOUT, walkout_every_s=0, outage_every_s=None)
    results = parsed(run(sim, 60))
    mine = [(t, r) for t, r in results if isinstance(r, BadgeSeen) and r.therapist == "t-002"]
    near = [t for t, r in mine if r.room == "room-02"]
    assert all(r.distance is not None and r.distance <= 9 for _, r in mine)
    assert all(b - a <= 2.5 for a, b in itertools.pairwise(near))
    far = [r for _, r in mine if r.room != "room-02"]  # through the wall, beyond max distance
    assert all(r.distance is not None and r.distance > 5 for r in far)


def test_the_first_therapist_walks_out_first_and_comes_back() -> None:
    lines: list[tuple[float, str]] = []
    sim = Simulation(
        LAYOUT, walkout_every_s=1000, away_s=(60, 60), outage_every_s=None,
        narrate=lambda at, line: lines.append((at, line)),
    )  # fmt: skip
    results = parsed(run(sim, 100))
    assert lines[0][1].startswith("t-001 walks out of room-01")
    assert lines[0][0] == pytest.approx(FIRST_WALKOUT_S, abs=0.2)
    assert lines[1] == (pytest.approx(FIRST_WALKOUT_S + 60, abs=0.2), "t-001 is back in room-01")
    in_room = [
        t
        for t, r in results
        if isinstance(r, BadgeSeen) and (r.therapist, r.room) == ("t-001", "room-01")
    ]
    away = [t for t in in_room if FIRST_WALKOUT_S < t < FIRST_WALKOUT_S + 60]
    assert away == []  # silent in their room while out
    assert any(t >= FIRST_WALKOUT_S + 60 for t in in_room)
    doors = [
        (t, r.closed) for t, r in results if isinstance(r, DoorChanged) and r.room == "room-01"
    ]
    opened = [t for t, closed in doors if not closed]
    assert opened == [
        pytest.approx(FIRST_WALKOUT_S, abs=0.2),
        pytest.approx(FIRST_WALKOUT_S + 60, abs=0.2),
    ]


def test_an_outage_takes_a_receiver_offline_and_silent() -> None:
    sim = Simulation(LAYOUT, walkout_every_s=0, outage_every_s=50, outage_s=20, seed=5)
    results = parsed(run(sim, 75))
    statuses = [
        (t, r)
        for t, r in results
        if isinstance(r, SensorAvailability) and r.sensor.startswith("espresense:")
    ]
    down = [(t, r.room) for t, r in statuses if not r.online]
    assert len(down) == 1
    ((when, room),) = down
    assert room != "room-01"  # the demo therapist's room stays watched
    up = [t for t, r in statuses if r.online and r.room == room and t > when]
    assert up == [pytest.approx(when + 20, abs=0.2)]
    heard = [
        t
        for t, r in results
        if isinstance(r, BadgeSeen) and r.room == room and when < t < when + 20
    ]
    assert heard == []


def test_a_sensors_file_without_a_receiver_per_device_is_refused() -> None:
    config = SensorsConfig("p1", devices={"a": "t-1", "b": "t-2"}, receivers={"r1": "room-1"})
    with pytest.raises(ValueError, match="a receiver for each device"):
        layout_from_config(config)
    back = layout_from_config(LAYOUT.sensors_config())
    assert [(p.therapist, p.room) for p in back.placements] == [
        (p.therapist, p.room) for p in LAYOUT.placements
    ]
