"""Topics and payloads of presence devices, turned into observations: pure and fast.

Three families of topics are understood, under roots the sensors file can change (`Topics`):

- BLE room presence in the `mqtt_room` convention of ESPresense:
  `espresense/devices/<device-id>/<room>` with JSON such as `{"id": "<device-id>",
  "distance": 1.8, ...}`. A registered device (the sensors file's `[devices]`) gives a
  `BadgeSeen`; any other device (a client's phone, a neighbour's watch) is ignored and counted.
- The receivers' own status, `espresense/rooms/<room>/status`: `online` when a receiver
  connects, `offline` as its last will. It gives the availability of the room's BLE detection.
- Zigbee2MQTT: `zigbee2mqtt/<name>` with the device's JSON state (`contact`, true when the door
  is closed; `occupancy` or `presence`), the attribute output `zigbee2mqtt/<name>/contact`
  (plain `true` or `false`), and `zigbee2mqtt/<name>/availability` with `{"state": "online"}`
  or the legacy plain `online` / `offline`. Friendly names may contain slashes: a topic is
  matched against the names the sensors file lists, never split blindly.

Anything else is ignored with a reason (`Reason`), never raised: a consumer must keep going
whatever a device publishes. Nothing here keeps the payload or puts it in a message.

Observations carry the instant the caller gives (the receive time): device clocks are not
trusted, and an ESPresense report has no time at all.
"""

import math
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard

import orjson

from stepout.domain.instants import Instant
from stepout.domain.presence import (
    BadgeSeen,
    DoorChanged,
    OccupancyChanged,
    SensorAvailability,
    SensorsConfig,
)

# What a device message can become (a video platform's `CallPresence` comes through the API).
SensorObservation = BadgeSeen | DoorChanged | OccupancyChanged | SensorAvailability
Payload = bytes | bytearray

MAX_PAYLOAD: Final = 16_384  # bytes; a Zigbee2MQTT state is under 2 KiB, an ESPresense report 300 B

Reason = Literal[
    "too_large",  # payload over MAX_PAYLOAD
    "bad_json",  # not JSON, or not a JSON object where one is expected
    "bad_field",  # a field missing, of the wrong type or out of range
    "unregistered_device",  # a BLE device the sensors file does not list
    "unknown_sensor",  # a Zigbee2MQTT name the sensors file does not list
    "no_state",  # a known sensor's message without the state of its kind (e.g. battery only)
    "other_topic",  # a topic of no interest (ESPresense telemetry, Zigbee2MQTT bridge, ...)
]
Parsed = SensorObservation | Reason
REASONS: Final[tuple[Reason, ...]] = (
    "too_large",
    "bad_json",
    "bad_field",
    "unregistered_device",
    "unknown_sensor",
    "no_state",
    "other_topic",
)

ONLINE: Final = {"online": True, "offline": False}
# The Zigbee2MQTT attribute output (`output: attribute`) of the states Stepout reads.
ATTRIBUTES: Final = frozenset({"contact", "occupancy", "presence"})


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic roots: ESPresense's (fixed by its firmware, changeable for a bridge) and
    Zigbee2MQTT's `base_topic`."""

    espresense: str = "espresense"
    zigbee2mqtt: str = "zigbee2mqtt"

    def subscriptions(self) -> tuple[str, ...]:
        return (
            f"{self.espresense}/devices/+/+",
            f"{self.espresense}/rooms/+/status",
            f"{self.zigbee2mqtt}/#",
        )


def receiver_sensor(name: str) -> str:
    """The sensor name under which a BLE receiver's availability is reported."""
    return f"espresense:{name}"


class Parser:
    """Turns one MQTT message into an observation, or the reason it was ignored."""

    __slots__ = ("_badges", "_config", "_devices", "_presence", "_rooms", "_sensors", "_zigbee")

    def __init__(self, config: SensorsConfig, topics: Topics | None = None) -> None:
        topics = topics or Topics()
        self._config = config
        self._devices = dict(config.devices)
        self._sensors = dict(config.sensors)
        self._presence = topics.espresense + "/"
        self._badges = topics.espresense + "/devices/"
        self._zigbee = topics.zigbee2mqtt + "/"
        self._rooms: dict[str, str] = {}  # receiver name -> room id, filled as met

    def parse(self, topic: str, payload: Payload, at: Instant) -> Parsed:
        if len(payload) > MAX_PAYLOAD:
            return "too_large"
        if topic.startswith(self._badges):  # most messages: the hot path
            device, _, receiver = topic[len(self._badges) :].partition("/")
            if not receiver or "/" in receiver:
                return "other_topic"
            return self._badge(device, receiver, payload, at)
        if topic.startswith(self._presence):
            return self._espresense(topic[len(self._presence) :], payload, at)
        if topic.startswith(self._zigbee):
            return self._zigbee2mqtt(topic[len(self._zigbee) :], payload, at)
        return "other_topic"

    def _room(self, receiver: str) -> str:
        room = self._rooms.get(receiver)
        if room is None:
            room = self._rooms[receiver] = self._config.room_of_receiver(receiver)
        return room

    def _espresense(self, rest: str, payload: Payload, at: Instant) -> Parsed:
        parts = rest.split("/")
        if len(parts) == 3 and parts[0] == "rooms" and parts[2] == "status" and parts[1]:
            online = _online(payload)
            if online is None:
                return "bad_field"
            receiver = parts[1]
            return SensorAvailability(receiver_sensor(receiver), self._room(receiver), online, at)
        return "other_topic"

    def _badge(self, device: str, receiver: str, payload: Payload, at: Instant) -> Parsed:
        therapist = self._devices.get(device)
        if therapist is None:
            return "unregistered_device"
        data = _object(payload)
        if data is None:
            return "bad_json"
        distance = data.get("distance")
        if data.get("id") != device or not _metres(distance):
            return "bad_field"
        room = self._rooms.get(receiver)
        if room is None:
            room = self._rooms[receiver] = self._config.room_of_receiver(receiver)
        return BadgeSeen(therapist, room, float(distance), at)

    def _zigbee2mqtt(self, rest: str, payload: Payload, at: Instant) -> Parsed:
        spec = self._sensors.get(rest)
        if spec is not None:
            data = _object(payload)
            if data is None:
                return "bad_json"
            return _state(rest, spec.room, spec.kind, data, at)
        name, _, leaf = rest.rpartition("/")
        spec = self._sensors.get(name) if name else None
        if spec is None:
            return "other_topic" if rest.startswith("bridge/") else "unknown_sensor"
        if leaf == "availability":
            online = _online(payload)
            if online is None:
                return "bad_field"
            return SensorAvailability(name, spec.room, online, at)
        if leaf in ATTRIBUTES:
            value = _plain_bool(payload)
            if value is None:
                return "bad_field"
            return _state(name, spec.room, spec.kind, {leaf: value}, at)
        return "other_topic"  # `<name>/set`, `<name>/get`: commands to the device


def _state(name: str, room: str, kind: str, data: dict[str, Any], at: Instant) -> Parsed:
    if kind == "door":
        closed = data.get("contact")
        if closed is None:
            return "no_state"
        if not isinstance(closed, bool):
            return "bad_field"
        return DoorChanged(name, room, closed, at)
    occupied = data.get("occupancy")
    if occupied is None:
        occupied = data.get("presence")
    if occupied is None:
        return "no_state"
    if not isinstance(occupied, bool):
        return "bad_field"
    return OccupancyChanged(name, room, occupied, at)


def _object(payload: Payload) -> dict[str, Any] | None:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _metres(value: object) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _online(payload: Payload) -> bool | None:
    """`{"state": "online"}` (Zigbee2MQTT 1.x and later) or plain `online` (legacy, and
    ESPresense's status topic)."""
    text = payload.strip()
    if text.startswith(b"{"):
        data = _object(text)
        state = None if data is None else data.get("state")
        return ONLINE.get(state) if isinstance(state, str) else None
    try:
        return ONLINE.get(text.decode("ascii").lower())
    except UnicodeDecodeError:
        return None


def _plain_bool(payload: Payload) -> bool | None:
    text = payload.strip().lower()
    return True if text == b"true" else False if text == b"false" else None
