"""The consumer through a real Mosquitto broker: order per topic, malformed messages, the
statuses of receivers and sensors, the link to the broker, and reconnection."""

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepout.adapters.mqtt.consumer import Broker, Consumer, link_sensor
from stepout.adapters.mqtt.parsing import Topics, receiver_sensor
from stepout.adapters.mqtt.simulator import Message, Publisher
from stepout.adapters.mqtt.sinks import RecordingSink
from stepout.domain.presence import (
    BadgeSeen,
    DoorChanged,
    Observation,
    SensorAvailability,
    SensorsConfig,
    SensorSpec,
)
from tests.conftest import service_unavailable

pytestmark = pytest.mark.mqtt

CONFIG = SensorsConfig(
    practice="p1",
    devices={"badge:t-001": "t-001", "badge:t-002": "t-002"},
    sensors={"room-01/door": SensorSpec("room-01", "door")},
    receivers={"therapy_01": "room-01", "therapy_02": "room-02"},
)


@pytest.fixture
def topics() -> Topics:
    """Topic roots of this test alone: tests share the broker, never their messages."""
    root = f"stepout-test/{secrets.token_hex(6)}"
    return Topics(espresense=f"{root}/espresense", zigbee2mqtt=f"{root}/zigbee2mqtt")


@pytest.fixture
def broker(mqtt_broker: tuple[str, int]) -> Broker:
    return Broker(*mqtt_broker)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def consumer(broker: Broker, topics: Topics, sink: RecordingSink) -> Iterator[Consumer]:
    running = Consumer(CONFIG, sink, broker, topics=topics, tick_every=0.1)
    running.start()
    try:
        assert running.connected.wait(10), "the consumer did not connect"
        wait_subscribed(running, broker, topics)
        yield running
    finally:
        running.stop()


def wait_subscribed(consumer: Consumer, broker: Broker, topics: Topics) -> None:
    """Publish a probe until the consumer hears it (its subscription is in place)."""
    probe = Message(f"{topics.zigbee2mqtt}/bridge/probe", b"{}")
    with Publisher(broker) as pub:
        for _ in range(100):
            pub.publish_all([probe])
            if consumer.counters.ignored["other_topic"]:
                return
            time.sleep(0.05)
    raise AssertionError("the consumer never heard the probe")


def badge(topics: Topics, device: str, receiver: str, distance: float) -> Message:
    payload = f'{{"id":"{device}","distance":{distance}}}'.encode()
    return Message(f"{topics.espresense}/devices/{device}/{receiver}", payload, qos=1)


def door(topics: Topics, closed: bool) -> Message:
    payload = b'{"contact":true}' if closed else b'{"contact":false}'
    return Message(f"{topics.zigbee2mqtt}/room-01/door", payload, qos=1)


def test_messages_reach_the_sink_in_order_per_topic(
    consumer: Consumer, broker: Broker, topics: Topics, sink: RecordingSink
) -> None:
    sent: list[Message] = []
    for i in range(200):
        sent.append(badge(topics, "badge:t-001", "therapy_01", i / 100))
        sent.append(badge(topics, "badge:t-002", "therapy_02", i / 100))
        if i % 20 == 0:
            sent.append(door(topics, closed=i % 40 == 0))
    with Publisher(broker) as pub:
        pub.publish_all(sent)
    assert sink.wait_for(400, kind=BadgeSeen)
    assert sink.wait_for(10, kind=DoorChanged)
    for therapist, room in (("t-001", "room-01"), ("t-002", "room-02")):
        seen = [
            o for o in sink.observations if isinstance(o, BadgeSeen) and o.therapist == therapist
        ]
        assert [o.distance for o in seen] == [i / 100 for i in range(200)]
        assert {o.room for o in seen} == {room}
        stamps = [o.at for o in seen]
        assert stamps == sorted(stamps)  # receive time, monotonic within a topic
    doors = [o.closed for o in sink.observations if isinstance(o, DoorChanged)]
    assert doors == [i % 40 == 0 for i in range(0, 200, 20)]
    assert consumer.counters.observed >= 410


def test_malformed_payloads_are_counted_and_the_consumer_keeps_going(
    consumer: Consumer, broker: Broker, topics: Topics, sink: RecordingSink
) -> None:
    device_topic = f"{topics.espresense}/devices/badge:t-001/therapy_01"
    bad = [
        Message(device_topic, b"{not json", qos=1),
        Message(device_topic, b'{"id":"badge:t-001","distance":"close"}', qos=1),
        Message(device_topic, b"\x00\xff" * 20_000, qos=1),
        Message(f"{topics.espresense}/devices/stranger/therapy_01", b"{}", qos=1),
        Message(f"{topics.zigbee2mqtt}/room-01/door", b'{"battery":3}', qos=1),
        Message(f"{topics.zigbee2mqtt}/garden-light", b'{"state":"ON"}', qos=1),
    ]
    with Publisher(broker) as pub:
        pub.publish_all([*bad, badge(topics, "badge:t-001", "therapy_01", 1.0)])
    assert sink.wait_for(1, kind=BadgeSeen)
    ignored = consumer.counters.ignored
    assert (ignored["bad_json"], ignored["bad_field"], ignored["too_large"]) == (1, 1, 1)
    assert ignored["unregistered_device"] == 1
    assert ignored["no_state"] == 1
    assert ignored["unknown_sensor"] == 1
    assert next(o for o in sink.observations if isinstance(o, BadgeSeen)).distance == 1.0


def test_a_failing_sink_does_not_stop_the_consumer(
    broker: Broker, topics: Topics, sink: RecordingSink
) -> None:
    class Flaky(RecordingSink):
        def observe(self, observation: Observation) -> None:
            if isinstance(observation, BadgeSeen) and observation.distance == 0.5:
                raise RuntimeError("the database is away")
            super().observe(observation)

    flaky = Flaky()
    running = Consumer(CONFIG, flaky, broker, topics=topics)
    running.start()
    try:
        assert running.connected.wait(10)
        wait_subscribed(running, broker, topics)
        with Publisher(broker) as pub:
            pub.publish_all([badge(topics, "badge:t-001", "therapy_01", d) for d in (0.5, 2.0)])
        assert flaky.wait_for(1, kind=BadgeSeen)
        assert running.counters.sink_errors == 1
    finally:
        running.stop()


def test_statuses_of_receivers_and_sensors_are_availability(
    consumer: Consumer, broker: Broker, topics: Topics, sink: RecordingSink
) -> None:
    messages = [
        Message(f"{topics.espresense}/rooms/therapy_01/status", b"offline", qos=1),
        Message(f"{topics.zigbee2mqtt}/room-01/door/availability", b'{"state":"offline"}', qos=1),
        Message(f"{topics.zigbee2mqtt}/room-01/door/availability", b"online", qos=1),
    ]
    before = len(sink.observations)
    with Publisher(broker) as pub:
        pub.publish_all(messages)
    assert sink.wait_for(before + 3)
    got = [o for o in sink.observations[before:] if isinstance(o, SensorAvailability)]
    assert [(o.sensor, o.room, o.online) for o in got] == [
        (receiver_sensor("therapy_01"), "room-01", False),
        ("room-01/door", "room-01", False),
        ("room-01/door", "room-01", True),
    ]


def test_rooms_are_unavailable_until_the_link_is_up(
    consumer: Consumer, sink: RecordingSink
) -> None:
    link = [o for o in sink.observations if isinstance(o, SensorAvailability)]
    assert {(o.sensor, o.room, o.online) for o in link if o.sensor.startswith("stepout:")} == {
        (link_sensor("room-01"), "room-01", False),
        (link_sensor("room-02"), "room-02", False),
        (link_sensor("room-01"), "room-01", True),
        (link_sensor("room-02"), "room-02", True),
    }
    first = [o.online for o in link if o.room == "room-01"]
    assert first == [False, True]


def test_time_passes_about_as_often_as_asked(consumer: Consumer, sink: RecordingSink) -> None:
    before = len(sink.ticks)
    time.sleep(1.0)
    assert 3 <= len(sink.ticks) - before <= 11  # every 0.1 s, give or take a busy machine
    assert sink.ticks == sorted(sink.ticks)


# -- Reconnection, on a broker of the test's own (the shared one is never stopped)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateBroker:
    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if binary is None:
            service_unavailable("the mosquitto binary", "not found on PATH or in /usr/sbin")
        self.binary = binary
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the private broker did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.mark.slow
def test_the_consumer_reconnects_after_the_broker_goes_away(
    private_broker: PrivateBroker, topics: Topics, sink: RecordingSink
) -> None:
    broker = Broker("127.0.0.1", private_broker.port)
    running = Consumer(CONFIG, sink, broker, topics=topics)
    running.start()
    try:
        assert running.connected.wait(10)
        wait_subscribed(running, broker, topics)
        private_broker.stop()
        deadline = time.monotonic() + 10
        while running.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running.connected.is_set()
        down = [o for o in sink.observations if isinstance(o, SensorAvailability)]
        assert (down[-1].sensor, down[-1].online) == (link_sensor(down[-1].room), False)

        private_broker.start()
        assert running.connected.wait(20), "no reconnection"
        wait_subscribed(running, broker, topics)  # subscribed again on the new connection
        with Publisher(broker) as pub:
            pub.publish_all([badge(topics, "badge:t-002", "therapy_02", 1.5)])
        assert sink.wait_for(1, kind=BadgeSeen)
        assert running.counters.connections == 2
        assert running.counters.disconnections == 1
        link = [
            o.online
            for o in sink.observations
            if isinstance(o, SensorAvailability) and o.sensor == link_sensor("room-02")
        ]
        assert link == [False, True, False, True]
    finally:
        running.stop()


def test_packets_split_across_socket_reads_arrive_whole(
    consumer: Consumer, broker: Broker, topics: Topics, sink: RecordingSink
) -> None:
    """Far more than one read's worth (64 KiB), with large packets among small ones, so that
    packets straddle the consumer's reads."""
    pad = "x" * 150
    sent = []
    for i in range(3000):
        payload = f'{{"id":"badge:t-001","distance":{i},"note":"{pad}"}}'.encode()
        sent.append(Message(f"{topics.espresense}/devices/badge:t-001/therapy_01", payload))
        if i % 500 == 250:
            big = b'{"contact":true,"pad":"' + b"y" * 15_000 + b'"}'
            sent.append(Message(f"{topics.zigbee2mqtt}/room-01/door", big))
    with Publisher(broker) as pub:
        pub.publish_all(sent)
    assert sink.wait_for(3000, timeout=20, kind=BadgeSeen)
    seen = [o.distance for o in sink.observations if isinstance(o, BadgeSeen)]
    assert seen == [float(i) for i in range(3000)]
    assert sum(isinstance(o, DoorChanged) for o in sink.observations) == 6
    assert consumer.counters.ignored == {"other_topic": consumer.counters.ignored["other_topic"]}
