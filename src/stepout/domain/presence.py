"""What presence sensors and video platforms tell Stepout, as plain data.

The edges turn device traffic into these observations: the MQTT consumer
(`stepout.adapters.mqtt`) from BLE room presence (the `mqtt_room` convention of ESPresense) and
Zigbee2MQTT sensors, the API from a video platform's participant events. The detector
(`stepout.domain.detection`) folds them into exits nobody declared. Observations name devices,
sensors and rooms by Stepout's ids: the sensors file (`SensorsConfig`) maps a device to its
therapist and a sensor to its room before an observation is made.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from stepout.domain.instants import MICROS_PER_SECOND, Instant

SensorKind = Literal["door", "occupancy"]


@dataclass(frozen=True, slots=True)
class BadgeSeen:
    """A therapist's badge or phone was seen in a room, `distance` metres from its receiver."""

    therapist: str
    room: str
    distance: float | None
    at: Instant


@dataclass(frozen=True, slots=True)
class DoorChanged:
    """A room's door contact: `closed` True when the door is shut."""

    sensor: str
    room: str
    closed: bool
    at: Instant


@dataclass(frozen=True, slots=True)
class OccupancyChanged:
    """A room's occupancy or presence sensor."""

    sensor: str
    room: str
    occupied: bool
    at: Instant


@dataclass(frozen=True, slots=True)
class SensorAvailability:
    """A sensor or a room's BLE receiver went online or offline. While a room has a receiver
    offline, its detection is unavailable: no exit is ever invented from silence."""

    sensor: str
    room: str
    online: bool
    at: Instant


@dataclass(frozen=True, slots=True)
class CallPresence:
    """A video platform saw the session's therapist leave (`present` False) or rejoin the call."""

    practice: str
    session: str
    present: bool
    at: Instant


Observation = BadgeSeen | DoorChanged | OccupancyChanged | SensorAvailability | CallPresence


@dataclass(frozen=True, slots=True)
class SensorSpec:
    room: str
    kind: SensorKind


@dataclass(frozen=True, slots=True)
class SensorsConfig:
    """The sensors file: which device is whose, which sensor is in which room, and thresholds.

    `receivers` maps the room name a BLE receiver publishes under (ESPresense's `<room>` topic
    level) to Stepout's room id; a name not listed is taken as the room id itself."""

    practice: str
    away_timeout: Instant = 60 * MICROS_PER_SECOND
    max_distance: float = 5.0  # metres; a badge seen further away counts as not seen
    devices: Mapping[str, str] = field(default_factory=dict)  # device id -> therapist id
    sensors: Mapping[str, SensorSpec] = field(default_factory=dict)  # Zigbee2MQTT name -> spec
    receivers: Mapping[str, str] = field(default_factory=dict)  # BLE room name -> room id

    def room_of_receiver(self, name: str) -> str:
        return self.receivers.get(name, name)


class PresenceSink(Protocol):
    """Where observations go: the detection service. `tick` lets time pass, so that an away
    timeout is noticed although no message arrives; the consumer calls it about twice a second.
    Both return quickly: they keep state in memory and touch the database only when an exit
    begins or ends."""

    def observe(self, observation: Observation) -> None: ...

    def tick(self, now: Instant) -> None: ...
