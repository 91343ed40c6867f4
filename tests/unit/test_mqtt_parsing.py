"""Topics and payloads of ESPresense and Zigbee2MQTT devices, parsed without a broker."""

import pytest

from stepout.adapters.mqtt.parsing import MAX_PAYLOAD, Parser, Topics, receiver_sensor
from stepout.domain.presence import (
    BadgeSeen,
    DoorChanged,
    OccupancyChanged,
    SensorAvailability,
    SensorsConfig,
    SensorSpec,
)

AT = 1_780_000_000_000_000
CONFIG = SensorsConfig(
    practice="p1",
    devices={"irk:badge1": "t-001", "phone:t2": "t-002"},
    sensors={
        "room-01-door": SensorSpec("room-01", "door"),
        "floor1/room-01/motion": SensorSpec("room-01", "occupancy"),
    },
    receivers={"therapy_1": "room-01"},
)
PARSER = Parser(CONFIG)


def parse(topic: str, payload: bytes | str) -> object:
    data = payload.encode() if isinstance(payload, str) else payload
    return PARSER.parse(topic, data, AT)


def test_a_registered_badge_is_seen_in_the_receivers_room() -> None:
    result = parse(
        "espresense/devices/irk:badge1/therapy_1",
        '{"id":"irk:badge1","idType":35,"rssi@1m":-65,"rssi":-71,"raw":1.9,"distance":1.52}',
    )
    assert result == BadgeSeen("t-001", "room-01", 1.52, AT)


def test_a_receiver_not_in_the_file_names_its_room_itself() -> None:
    result = parse("espresense/devices/phone:t2/corridor", '{"id":"phone:t2","distance":3}')
    assert result == BadgeSeen("t-002", "corridor", 3.0, AT)


def test_an_unregistered_device_is_ignored() -> None:
    result = parse("espresense/devices/apple:1005:9-26/therapy_1", '{"id":"x","distance":1}')
    assert result == "unregistered_device"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"id":"irk:badge1"}', "bad_field"),
        ('{"id":"irk:badge1","distance":"near"}', "bad_field"),
        ('{"id":"irk:badge1","distance":true}', "bad_field"),
        ('{"id":"irk:badge1","distance":-1}', "bad_field"),
        ('{"id":"irk:other","distance":1}', "bad_field"),
        ('{"distance":1}', "bad_field"),
        (b"\xff\xfe", "bad_json"),
    ],
)
def test_a_malformed_badge_report_is_ignored_with_its_reason(payload: str, reason: str) -> None:
    assert parse("espresense/devices/irk:badge1/therapy_1", payload) == reason


def test_an_oversized_payload_is_refused_before_it_is_read() -> None:
    payload = b'{"id":"irk:badge1","distance":1,"pad":"' + b"x" * MAX_PAYLOAD + b'"}'
    assert parse("espresense/devices/irk:badge1/therapy_1", payload) == "too_large"


def test_espresense_buffered_reports_and_telemetry_are_other_topics() -> None:
    assert parse("espresense/devices/irk:badge1/therapy_1/r1", "{}") == "other_topic"
    assert parse("espresense/rooms/therapy_1/telemetry", "{}") == "other_topic"


@pytest.mark.parametrize(("payload", "online"), [("online", True), ("offline", False)])
def test_a_receivers_status_is_the_availability_of_its_room(payload: str, online: bool) -> None:
    result = parse("espresense/rooms/therapy_1/status", payload)
    assert result == SensorAvailability(receiver_sensor("therapy_1"), "room-01", online, AT)


def test_a_door_contact_true_means_closed() -> None:
    closed = parse("zigbee2mqtt/room-01-door", '{"battery":91,"contact":true,"linkquality":120}')
    opened = parse("zigbee2mqtt/room-01-door", '{"contact":false}')
    assert closed == DoorChanged("room-01-door", "room-01", True, AT)
    assert opened == DoorChanged("room-01-door", "room-01", False, AT)


def test_a_name_with_slashes_is_matched_whole() -> None:
    assert parse("zigbee2mqtt/floor1/room-01/motion", '{"occupancy":true}') == OccupancyChanged(
        "floor1/room-01/motion", "room-01", True, AT
    )
    assert parse("zigbee2mqtt/floor1/room-01/motion", '{"presence":false}') == OccupancyChanged(
        "floor1/room-01/motion", "room-01", False, AT
    )


def test_the_attribute_output_is_understood() -> None:
    assert parse("zigbee2mqtt/room-01-door/contact", "false") == DoorChanged(
        "room-01-door", "room-01", False, AT
    )
    assert parse("zigbee2mqtt/room-01-door/contact", "maybe") == "bad_field"


@pytest.mark.parametrize(
    ("payload", "online"),
    [('{"state":"online"}', True), ('{"state":"offline"}', False), ("offline", False)],
)
def test_zigbee_availability_new_and_legacy(payload: str, online: bool) -> None:
    result = parse("zigbee2mqtt/floor1/room-01/motion/availability", payload)
    assert result == SensorAvailability("floor1/room-01/motion", "room-01", online, AT)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("zigbee2mqtt/room-01-door", '{"battery":80}', "no_state"),
        ("zigbee2mqtt/room-01-door", '{"contact":"yes"}', "bad_field"),
        ("zigbee2mqtt/room-01-door", "{oops", "bad_json"),
        ("zigbee2mqtt/room-01-door/availability", '{"state":1}', "bad_field"),
        ("zigbee2mqtt/room-01-door/availability", "sleepy", "bad_field"),
        ("zigbee2mqtt/kitchen-light", '{"state":"ON"}', "unknown_sensor"),
        ("zigbee2mqtt/bridge/state", '{"state":"online"}', "other_topic"),
        ("zigbee2mqtt/room-01-door/set", '{"contact":true}', "other_topic"),
        ("elsewhere/room-01-door", '{"contact":true}', "other_topic"),
    ],
)
def test_zigbee_messages_that_say_nothing_usable(topic: str, payload: str, reason: str) -> None:
    assert parse(topic, payload) == reason


def test_topic_roots_are_configurable() -> None:
    parser = Parser(CONFIG, Topics(espresense="t1/esp", zigbee2mqtt="t1/z2m"))
    seen = parser.parse(
        "t1/esp/devices/irk:badge1/therapy_1", b'{"id":"irk:badge1","distance":1}', AT
    )
    door = parser.parse("t1/z2m/room-01-door", b'{"contact":true}', AT)
    assert isinstance(seen, BadgeSeen)
    assert isinstance(door, DoorChanged)
    assert parser.parse("espresense/devices/irk:badge1/x", b"{}", AT) == "other_topic"


def test_the_consumers_clock_is_microseconds_since_the_epoch() -> None:
    from stepout.adapters.mqtt.consumer import wall_clock
    from stepout.domain.instants import now

    assert abs(wall_clock() - now()) < 1_000_000


@pytest.mark.parametrize(
    ("url", "broker"),
    [
        ("mqtt://127.0.0.1", ("127.0.0.1", 1883)),
        ("mqtt://localhost:1884", ("localhost", 1884)),
        ("mqtt://[::1]:1885/", ("::1", 1885)),
    ],
)
def test_broker_addresses(url: str, broker: tuple[str, int]) -> None:
    from stepout.adapters.mqtt.consumer import Broker, parse_broker

    assert parse_broker(url) == Broker(*broker)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1", "mqtts://h", "mqtt://", "mqtt://h:99999", "mqtt://u:p@h", "mqtt://h/x"],
)
def test_broker_addresses_refused(url: str) -> None:
    from stepout.adapters.mqtt.consumer import BrokerError, parse_broker

    with pytest.raises(BrokerError):
        parse_broker(url)
