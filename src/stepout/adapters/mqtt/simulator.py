"""Simulated presence devices for a demo practice: what `stepout sensors simulate` publishes.

Each therapist wears a badge (a BLE device) that the receiver of their room reports every few
seconds, a metre or two away, in ESPresense's `mqtt_room` format; now and then a neighbouring
room's receiver catches it too, further than the sensors file's maximum distance. Each room has
a Zigbee2MQTT door contact and an occupancy sensor, and receivers and sensors announce that
they are online (retained, as the real ones do).

Now and then a therapist walks out without declaring it: the door opens, the badge is seen in
the corridor (or in another room), the door closes behind them, the badge falls silent in their
room; a few minutes later the door opens, the badge is back, the door closes. The first
therapist (whose room display `stepout demo` prints) walks out first, soon after the start, and
often after that. Now and then another room's receiver goes offline for a while: no exit may
be detected there meanwhile.

`Simulation` is pure (a seeded schedule of messages over seconds since the start);
`run` publishes it to a broker in real time.
"""

import heapq
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from stepout.adapters.mqtt.consumer import Broker
from stepout.adapters.mqtt.parsing import Topics
from stepout.domain.instants import MICROS_PER_SECOND
from stepout.domain.presence import SensorsConfig, SensorSpec

CORRIDOR: Final = "corridor"  # a receiver's name that is no therapy room
DEMO_AWAY_TIMEOUT_S: Final = 30  # short, so that a newcomer sees a detection soon
FIRST_WALKOUT_S: Final = 20.0
OCCUPANCY_EVERY_S: Final = 30.0
NEIGHBOUR_SHARE: Final = 0.15  # of badge reports also heard, far away, by the next room


@dataclass(frozen=True, slots=True)
class Placement:
    """A therapist, their badge and the room they work in (Stepout's id and the receiver's
    name for it)."""

    therapist: str
    device: str
    room: str
    receiver: str


@dataclass(frozen=True, slots=True)
class Layout:
    practice: str
    placements: tuple[Placement, ...]
    away_timeout_s: float = DEMO_AWAY_TIMEOUT_S

    def sensors_config(self) -> SensorsConfig:
        sensors: dict[str, SensorSpec] = {}
        for p in self.placements:
            sensors[door_of(p.room)] = SensorSpec(p.room, "door")
            sensors[motion_of(p.room)] = SensorSpec(p.room, "occupancy")
        return SensorsConfig(
            practice=self.practice,
            away_timeout=round(self.away_timeout_s * MICROS_PER_SECOND),
            devices={p.device: p.therapist for p in self.placements},
            sensors=sensors,
            receivers={p.receiver: p.room for p in self.placements},
        )


def door_of(room: str) -> str:
    return f"{room}/door"


def motion_of(room: str) -> str:
    return f"{room}/motion"


def layout(practice: str, rooms: Sequence[tuple[str, str]]) -> Layout:
    """One therapist per room: `rooms` is (therapist id, room id) in order."""
    return Layout(
        practice,
        tuple(
            Placement(t, f"badge:{t}", room, f"therapy_{room.removeprefix('room-')}")
            for t, room in rooms
        ),
    )


def layout_from_config(config: SensorsConfig) -> Layout:
    """The i-th device's therapist works in the room of the i-th receiver (the order of the
    file, as `--write-config` writes it)."""
    devices = list(config.devices.items())
    receivers = list(config.receivers.items())
    if not devices or len(receivers) < len(devices):
        raise ValueError("the sensors file needs a receiver for each device, in the same order")
    return Layout(
        config.practice,
        tuple(
            Placement(t, d, room, name)
            for (d, t), (name, room) in zip(devices, receivers, strict=False)
        ),
        config.away_timeout / MICROS_PER_SECOND,
    )


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 0


@dataclass(slots=True)
class _Therapist:
    placement: Placement
    where: str | None  # the receiver that hears the badge now, None when none does
    out: bool = False


@dataclass(order=True, slots=True)
class _Due:
    at: float
    seq: int
    action: Callable[[float], list[Message]] = field(compare=False)


class Simulation:
    """The schedule of messages: `due(now)` returns those due by `now` (seconds since the
    start), in order; `next_at` says when the next one is."""

    def __init__(
        self,
        layout: Layout,
        topics: Topics | None = None,
        *,
        seed: int = 1,
        badge_every_s: float = 2.0,
        walkout_every_s: float = 90.0,
        away_s: tuple[float, float] = (90.0, 180.0),
        outage_every_s: float | None = 300.0,
        outage_s: float = 60.0,
        first_walkout_s: float = FIRST_WALKOUT_S,
        narrate: Callable[[float, str], None] | None = None,
    ) -> None:
        self.layout = layout
        self.narrate = narrate or (lambda at, line: None)
        self.topics = topics or Topics()
        self.rnd = random.Random(seed)
        self.badge_every_s = badge_every_s
        self.walkout_every_s = walkout_every_s
        self.away_s = away_s
        self.outage_every_s = outage_every_s
        self.outage_s = outage_s
        self.walkouts = 0
        self.therapists = [_Therapist(p, p.receiver) for p in layout.placements]
        self.offline: set[str] = set()  # receivers
        self._heap: list[_Due] = []
        self._seq = 0
        self._at(0.0, self._announce)
        n = len(self.therapists)
        for i in range(n):  # spread the badges over one period
            self._at(badge_every_s * i / n, self._badge_loop(i))
        for i in range(n):
            self._at(OCCUPANCY_EVERY_S * i / n, self._occupancy_loop(i))
        if walkout_every_s > 0 and n:
            self._at(first_walkout_s, self._walkout)
        if outage_every_s and n > 1:
            self._at(outage_every_s, self._outage)

    # -- The schedule

    @property
    def next_at(self) -> float:
        return self._heap[0].at if self._heap else float("inf")

    def due(self, now: float) -> list[Message]:
        out: list[Message] = []
        while self._heap and self._heap[0].at <= now:
            item = heapq.heappop(self._heap)
            out.extend(item.action(item.at))
        return out

    def _at(self, at: float, action: Callable[[float], list[Message]]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, _Due(at, self._seq, action))

    # -- Messages

    def badge(self, device: str, receiver: str, distance: float) -> Message:
        payload = orjson.dumps(
            {
                "id": device,
                "idType": 30,
                "rssi@1m": -65,
                "rssi": round(-65 - 20 * max(distance, 0.1) ** 0.5),
                "raw": round(distance * 1.1, 2),
                "distance": round(distance, 2),
                "speed": 0.0,
                "mac": "",
                "interval": int(self.badge_every_s * 1000),
            }
        )
        return Message(f"{self.topics.espresense}/devices/{device}/{receiver}", payload)

    def door(self, room: str, closed: bool) -> Message:
        state = {"battery": 92, "contact": closed, "linkquality": 140, "voltage": 3000}
        return Message(f"{self.topics.zigbee2mqtt}/{door_of(room)}", orjson.dumps(state))

    def occupancy(self, room: str, occupied: bool) -> Message:
        state = {"battery": 88, "illuminance": 310, "linkquality": 120, "occupancy": occupied}
        return Message(f"{self.topics.zigbee2mqtt}/{motion_of(room)}", orjson.dumps(state))

    def receiver_status(self, receiver: str, online: bool) -> Message:
        status = b"online" if online else b"offline"
        return Message(
            f"{self.topics.espresense}/rooms/{receiver}/status", status, retain=True, qos=1
        )

    def availability(self, sensor: str, online: bool) -> Message:
        state = orjson.dumps({"state": "online" if online else "offline"})
        topic = f"{self.topics.zigbee2mqtt}/{sensor}/availability"
        return Message(topic, state, retain=True, qos=1)

    # -- Behaviour

    def _announce(self, at: float) -> list[Message]:
        out = [self.receiver_status(CORRIDOR, True)]
        for t in self.therapists:
            room = t.placement.room
            out.append(self.receiver_status(t.placement.receiver, True))
            out.append(self.availability(door_of(room), True))
            out.append(self.availability(motion_of(room), True))
            out.append(self.door(room, True))
        return out

    def _badge_loop(self, i: int) -> Callable[[float], list[Message]]:
        def report(at: float) -> list[Message]:
            t = self.therapists[i]
            self._at(at + self.badge_every_s * self.rnd.uniform(0.8, 1.2), report)
            if t.where is None or t.where in self.offline:
                return []
            near = t.where == t.placement.receiver
            distance = self.rnd.uniform(0.8, 2.5) if near else self.rnd.uniform(1.5, 4.0)
            out = [self.badge(t.placement.device, t.where, distance)]
            if near and len(self.therapists) > 1 and self.rnd.random() < NEIGHBOUR_SHARE:
                other = self.therapists[(i + 1) % len(self.therapists)].placement.receiver
                if other not in self.offline:
                    far = self.rnd.uniform(6.0, 9.0)  # through the wall: beyond max distance
                    out.append(self.badge(t.placement.device, other, far))
            return out

        return report

    def _occupancy_loop(self, i: int) -> Callable[[float], list[Message]]:
        def report(at: float) -> list[Message]:
            self._at(at + OCCUPANCY_EVERY_S, report)
            return [self.occupancy(self.therapists[i].placement.room, True)]  # the client stays

        return report

    def _walkout(self, at: float) -> list[Message]:
        self._at(at + self.rnd.expovariate(1 / self.walkout_every_s), self._walkout)
        present = [t for t in self.therapists if not t.out]
        if not present:
            return []
        first = self.therapists[0]
        t = first if (self.walkouts % 3 == 0 and not first.out) else self.rnd.choice(present)
        self.walkouts += 1
        t.out = True
        room = t.placement.room
        others = [o for o in self.therapists if o is not t]
        # To the corridor and away (silence in their room), or into a colleague's room.
        to_room = bool(others) and self.walkouts % 2 == 0
        t.where = self.rnd.choice(others).placement.receiver if to_room else CORRIDOR
        seen = f"seen by the receiver {t.where}" if to_room else "seen in the corridor, then gone"
        self.narrate(
            at, f"{t.placement.therapist} walks out of {room} without declaring it ({seen})"
        )
        self._at(at + 2.0, lambda a: [self.door(room, True)])
        if not to_room:
            self._at(at + 12.0, lambda a: self._vanish(t))
        self._at(at + self.rnd.uniform(*self.away_s), lambda a: self._back(t, a))
        return [self.door(room, False)]

    def _vanish(self, t: _Therapist) -> list[Message]:
        if t.out:
            t.where = None
        return []

    def _back(self, t: _Therapist, at: float) -> list[Message]:
        room = t.placement.room
        t.where = t.placement.receiver
        t.out = False
        self.narrate(at, f"{t.placement.therapist} is back in {room}")
        self._at(at + 2.0, lambda a: [self.door(room, True)])
        return [self.door(room, False), self.badge(t.placement.device, t.where, 1.2)]

    def _outage(self, at: float) -> list[Message]:
        assert self.outage_every_s is not None
        self._at(at + self.outage_every_s, self._outage)
        candidates = [t.placement.receiver for t in self.therapists[1:]]
        receiver = self.rnd.choice(candidates)
        if receiver in self.offline:
            return []
        self.offline.add(receiver)
        self.narrate(at, f"the receiver {receiver} goes offline for {self.outage_s:.0f} s")

        def back(a: float) -> list[Message]:
            self.offline.discard(receiver)
            self.narrate(a, f"the receiver {receiver} is back online")
            return [self.receiver_status(receiver, True)]

        self._at(at + self.outage_s, back)
        return [self.receiver_status(receiver, False)]


class Publisher:
    """A paho-mqtt client that publishes messages (its network loop on a thread of its own)."""

    def __init__(self, broker: Broker, client_id: str | None = None) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"stepout-simulator-{time.time_ns()}",
        )
        self.client.max_queued_messages_set(0)  # unlimited: the loop drains it
        self.client.max_inflight_messages_set(1000)
        self.broker = broker
        self._last: mqtt.MQTTMessageInfo | None = None
        self._connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set()

    def __enter__(self) -> "Publisher":
        self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            self.client.loop_stop()
            raise ConnectionError(f"no answer from {self.broker}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._last is not None:  # what was handed over leaves before the goodbye
            self._last.wait_for_publish(10)
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, message: Message) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(message.topic, message.payload, message.qos, message.retain)
        self._last = info
        return info

    def publish_all(self, messages: Iterator[Message] | Sequence[Message]) -> None:
        """Publish and wait until each has left (QoS 0) or been acknowledged (QoS 1)."""
        infos = [self.publish(m) for m in messages]
        for info in infos:
            info.wait_for_publish(10)


def run(
    simulation: Simulation,
    publisher: Publisher,
    *,
    seconds: float | None,
    stop: threading.Event,
    on_message: Callable[[Message], None] | None = None,
) -> int:
    """Publish `simulation` in real time until `seconds` pass or `stop` is set: the count."""
    start = time.monotonic()
    sent = 0
    end = float("inf") if seconds is None else seconds
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if elapsed >= end:
            break
        for message in simulation.due(elapsed):
            publisher.publish(message)
            sent += 1
            if on_message is not None:
                on_message(message)
        wait = min(simulation.next_at, end) - (time.monotonic() - start)
        if wait > 0:
            stop.wait(min(wait, 0.5))
    return sent
