"""The sensors file: what it maps, its defaults, and errors that name the file and the key."""

from pathlib import Path

import pytest

from stepout.adapters.mqtt.parsing import Topics
from stepout.adapters.mqtt.sensors_file import (
    SensorsFileError,
    load_sensors_file,
    parse_sensors_file,
    render_sensors_file,
)
from stepout.domain.instants import MICROS_PER_SECOND
from stepout.domain.presence import SensorsConfig, SensorSpec

EXAMPLE = """
practice = "p1"

[thresholds]
away_timeout_seconds = 45
max_distance_metres = 4.5

[mqtt]
zigbee2mqtt_topic = "site-a/zigbee2mqtt"

[devices]
"irk:0123456789abcdef" = "t-001"

[receivers]
therapy_1 = "room-01"

[sensors]
"room-01/door" = { room = "room-01", kind = "door" }

[sensors.room-01-motion]
room = "room-01"
kind = "occupancy"
"""


def test_the_example_is_read() -> None:
    read = parse_sensors_file(EXAMPLE, "sensors.toml")
    assert read.config == SensorsConfig(
        practice="p1",
        away_timeout=45 * MICROS_PER_SECOND,
        max_distance=4.5,
        devices={"irk:0123456789abcdef": "t-001"},
        sensors={
            "room-01/door": SensorSpec("room-01", "door"),
            "room-01-motion": SensorSpec("room-01", "occupancy"),
        },
        receivers={"therapy_1": "room-01"},
    )
    assert read.topics == Topics(espresense="espresense", zigbee2mqtt="site-a/zigbee2mqtt")


def test_thresholds_default() -> None:
    read = parse_sensors_file('practice = "p1"')
    assert read.config.away_timeout == SensorsConfig("p1").away_timeout
    assert read.config.max_distance == SensorsConfig("p1").max_distance


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "f.toml: practice: missing"),
        ('practice = ""', "f.toml: practice: expected non-empty text"),
        ('practice = "p"\ncolour = 1', "f.toml: colour: unknown key"),
        (
            'practice = "p"\n[thresholds]\naway_timeout_seconds = 0',
            "f.toml: thresholds.away_timeout_seconds: expected a positive number",
        ),
        (
            'practice = "p"\n[thresholds]\nmax_distance_metres = "far"',
            "f.toml: thresholds.max_distance_metres: expected a positive number",
        ),
        ('practice = "p"\n[devices]\n"irk:1" = 7', 'f.toml: devices."irk:1": expected non-empty'),
        (
            'practice = "p"\n[sensors]\ndoor = { room = "r", kind = "window" }',
            "f.toml: sensors.door.kind: expected one of door, occupancy",
        ),
        (
            'practice = "p"\n[sensors]\ndoor = { kind = "door" }',
            "f.toml: sensors.door.room: missing",
        ),
        ('practice = "p"\n[sensors]\n"a/#" = { room = "r", kind = "door" }', "wildcards"),
        ('practice = "p"\n[mqtt]\nzigbee2mqtt_topic = "z/"', "f.toml: mqtt.zigbee2mqtt_topic:"),
        ('practice = "p"\ndevices = 3', "f.toml: devices: expected a table"),
        ("practice = ", "f.toml: not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_key(text: str, message: str) -> None:
    with pytest.raises(SensorsFileError) as caught:
        parse_sensors_file(text, "f.toml")
    assert message in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SensorsFileError, match=r"nope\.toml"):
        load_sensors_file(tmp_path / "nope.toml")


def test_a_rendered_file_reads_back_the_same(tmp_path: Path) -> None:
    original = parse_sensors_file(EXAMPLE)
    path = tmp_path / "s.toml"
    path.write_text(render_sensors_file(original.config, original.topics))
    assert load_sensors_file(path) == original
