"""`stepout sensors simulate`, `stepout sensors run` and `stepout serve --sensors` as an
operator runs them, against the real Mosquitto broker. Every name here is synthetic."""

import secrets
import signal
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from stepout.adapters.mqtt.consumer import Broker, Consumer
from stepout.adapters.mqtt.parsing import Topics
from stepout.adapters.mqtt.sensors_file import load_sensors_file, render_sensors_file
from stepout.adapters.mqtt.simulator import CORRIDOR, Message, Publisher
from stepout.adapters.mqtt.sinks import RecordingSink
from stepout.domain.instants import MICROS_PER_SECOND
from stepout.domain.presence import BadgeSeen, SensorsConfig
from tests.e2e.test_serve import cli, environment, free_port, practice_with_therapist, running


def unique_topics() -> Topics:
    root = f"stepout-test/{secrets.token_hex(6)}"
    return Topics(espresense=f"{root}/espresense", zigbee2mqtt=f"{root}/zigbee2mqtt")


def clear_retained(broker: Broker, topics: Topics, config: SensorsConfig) -> None:
    """Remove the statuses the simulator left retained on the shared broker."""
    names = [*config.receivers, CORRIDOR]
    empty = [Message(f"{topics.espresense}/rooms/{n}/status", b"", retain=True) for n in names]
    empty += [
        Message(f"{topics.zigbee2mqtt}/{n}/availability", b"", retain=True) for n in config.sensors
    ]
    with Publisher(broker) as pub:
        pub.publish_all(empty)


def test_the_demo_sensors_file_matches_the_demo_practice(tmp_path: Path) -> None:
    path = tmp_path / "demo-sensors.toml"
    env = environment(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path)
    cli(env, "sensors", "simulate", "--write-config", str(path))
    read = load_sensors_file(path).config
    assert read.practice == "demo"
    assert sorted(read.devices.values()) == [f"t-{i:03d}" for i in range(1, 13)]
    assert sorted(read.receivers.values()) == [f"room-{i:02d}" for i in range(1, 13)]
    assert {(s.room, s.kind) for s in read.sensors.values()} == {
        (f"room-{i:02d}", kind) for i in range(1, 13) for kind in ("door", "occupancy")
    }
    again = cli(env, "sensors", "simulate", "--write-config", str(path), code=2)
    assert "already exists" in again


def test_a_bad_sensors_file_is_named_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "sensors.toml"
    path.write_text('practice = "p1"\n[thresholds]\naway_timeout_seconds = -5\n')
    env = environment(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path)
    out = " ".join(cli(env, "sensors", "run", "--config", str(path), code=2).split())
    assert f"{path}: thresholds.away_timeout_seconds: expected a positive number" in out
    out = " ".join(
        cli(env, "sensors", "run", "-c", str(path), "--broker", "http://x", code=2).split()
    )
    assert "error" in out


def test_serve_runs_the_sensors_in_one_worker_only(tmp_path: Path) -> None:
    path = tmp_path / "sensors.toml"
    path.write_text('practice = "p1"\n')
    env = environment(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path)
    out = cli(env, "serve", "--sensors", str(path), "--workers", "2", code=2)
    assert "stepout sensors run" in " ".join(out.split())
    path.write_text("practice = 1\n")
    out = cli(env, "serve", "--sensors", str(path), code=2)
    assert f"{path}: practice: expected non-empty text" in " ".join(out.split())


@pytest.mark.mqtt
def test_the_simulator_publishes_every_badge(tmp_path: Path, mqtt_broker: tuple[str, int]) -> None:
    topics = unique_topics()
    demo = tmp_path / "demo.toml"
    env = environment(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path)
    cli(env, "sensors", "simulate", "--write-config", str(demo), "--rooms", "4")
    config = load_sensors_file(demo).config
    path = tmp_path / "sensors.toml"
    path.write_text(render_sensors_file(config, topics))
    sink = RecordingSink()
    consumer = Consumer(config, sink, Broker(*mqtt_broker), topics=topics)
    consumer.start()
    try:
        assert consumer.connected.wait(10)
        time.sleep(0.5)  # subscribed
        out = cli(
            env, "sensors", "simulate", "--config", str(path), "--seconds", "3",
            "--broker", f"mqtt://{mqtt_broker[0]}:{mqtt_broker[1]}",
            "--walkout-every", "0", "--rate", "8",
        )  # fmt: skip
        assert "Published" in out
        assert sink.wait_for(12, kind=BadgeSeen)
    finally:
        consumer.stop()
        clear_retained(Broker(*mqtt_broker), topics, config)
    seen = {(o.therapist, o.room) for o in sink.observations if isinstance(o, BadgeSeen)}
    assert {("t-001", "room-01"), ("t-002", "room-02"), ("t-003", "room-03")} <= seen
    assert consumer.counters.ignored["bad_json"] == consumer.counters.ignored["bad_field"] == 0


@pytest.mark.mqtt
@pytest.mark.slow
def test_serve_with_sensors_records_an_exit_and_tells_the_display(
    tmp_path: Path, mqtt_broker: tuple[str, int]
) -> None:
    env = environment(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path)
    api_token = practice_with_therapist(env)
    room_url = cli(env, "rooms", "token", "room-1").splitlines()[0].strip()
    room_token = room_url.rpartition("token=")[2]
    topics = unique_topics()
    config = SensorsConfig(
        practice="p1",
        away_timeout=2 * MICROS_PER_SECOND,
        devices={"badge:alice": "t-001"},
        receivers={"therapy_1": "room-1"},
    )
    path = tmp_path / "sensors.toml"
    path.write_text(render_sensors_file(config, topics))
    broker = f"mqtt://{mqtt_broker[0]}:{mqtt_broker[1]}"
    port = free_port()
    args = ("serve", "--port", str(port), "--sensors", str(path), "--broker", broker)
    badge = Message(
        f"{topics.espresense}/devices/badge:alice/therapy_1",
        b'{"id":"badge:alice","distance":1.1}',
        qos=1,
    )
    with running(env, tmp_path, *args, port=port) as server, Publisher(Broker(*mqtt_broker)) as pub:
        server.wait_ready()
        started = httpx.post(
            f"{server.url}/api/v1/sessions",
            json={"client": "c-1", "room": "room-1"},
            headers={"Authorization": f"Bearer {api_token}"},
        )
        assert started.status_code == 201, started.text
        states: list[str] = []
        url = f"{server.url}/api/v1/rooms/room-1/display/events?token={room_token}"

        def watch() -> None:
            with httpx.stream("GET", url, timeout=30) as events:
                for line in events.iter_lines():
                    if line.startswith("data: "):
                        states.append(orjson.loads(line[6:])["state"])
                        if states[-1] == "away":
                            return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for _ in range(15):  # seen for 4.5 s (the detector first watches a full timeout)
            pub.publish_all([badge])
            time.sleep(0.3)
        left = time.monotonic()
        watcher.join(15)  # silence: the exit, and the display told
        took = time.monotonic() - left
        assert states[0] == "in_session"
        assert states[-1] == "away", server.output()
        assert took < 2 + 2.5  # the timeout, then within the detector's reorder window and a tick
        server.stop()
    log = server.output()
    assert "sensors consumer stopped" in log
    assert "badge:alice" not in log  # device ids and payloads stay out of the log


@pytest.mark.mqtt
def test_sensors_run_stops_cleanly_on_sigterm(tmp_path: Path, mqtt_broker: tuple[str, int]) -> None:
    env = environment(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path)
    cli(env, "practices", "add", "p1", "--name", "Synthetic practice")
    topics = unique_topics()
    config = SensorsConfig(practice="p1", devices={"badge:alice": "t-001"})
    path = tmp_path / "sensors.toml"
    path.write_text(render_sensors_file(config, topics))
    broker = f"mqtt://{mqtt_broker[0]}:{mqtt_broker[1]}"
    args = ("sensors", "run", "--config", str(path), "--broker", broker)
    with running(env, tmp_path, *args, port=0) as process, Publisher(Broker(*mqtt_broker)) as pub:
        deadline = time.monotonic() + 30
        while "mqtt connected" not in process.output():
            assert process.process.poll() is None, process.output()
            assert time.monotonic() < deadline, process.output()
            time.sleep(0.1)
        time.sleep(0.3)  # subscribed
        topic = f"{topics.espresense}/devices/badge:alice/therapy_1"
        pub.publish_all([Message(topic, b"{not json", qos=1)])
        time.sleep(0.5)
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(20) == 0, process.output()
    log = process.output()
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    counts = {
        (x.get("action"), x.get("outcome")): x["count"]
        for x in lines
        if x["event"] == "sensor counts"
    }
    assert counts[("received", None)] == 1
    assert counts[("ignored", "bad_json")] == 1
    assert any(x["event"] == "sensors consumer stopped" for x in lines)
    assert "badge:alice" not in log
    assert "not json" not in log
