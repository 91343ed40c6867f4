"""Detection end to end: device messages through the real Mosquitto broker, the consumer, the
presence service and a real database (SQLite, and PostgreSQL when marked)."""

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from stepout.adapters.db import Database
from stepout.adapters.mqtt.consumer import Broker, Consumer
from stepout.adapters.mqtt.parsing import Topics
from stepout.adapters.mqtt.simulator import Message, Publisher
from stepout.adapters.mqtt.wiring import notice
from stepout.domain.commands import DeclareExit, Return, StartSession
from stepout.domain.instants import MICROS_PER_SECOND
from stepout.domain.presence import SensorsConfig, SensorSpec
from stepout.domain.records import Exit
from stepout.services.accounts import AccountService
from stepout.services.presence import PresenceService
from stepout.services.workflow import Workflow
from stepout.web.live import room_topic

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

AWAY_S = 2.0
CONFIG = SensorsConfig(
    practice="p1",
    away_timeout=round(AWAY_S * MICROS_PER_SECOND),
    devices={"badge:t-001": "t-001"},
    sensors={"room-01/door": SensorSpec("room-01", "door")},
    receivers={"therapy_01": "room-01", "therapy_02": "room-02"},
)
T = TypeVar("T")


class Notices:
    def __init__(self) -> None:
        self.topics: list[str] = []

    def notify(self, topics: object) -> None:
        self.topics.extend(topics)  # type: ignore[call-overload]

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class Scene:
    """One therapist in session in room-01, a badge, a door, a receiver per room."""

    def __init__(self, db: Database, broker: Broker) -> None:
        root = f"stepout-test/{secrets.token_hex(6)}"
        self.topics = Topics(espresense=f"{root}/espresense", zigbee2mqtt=f"{root}/zigbee2mqtt")
        self.db = db
        AccountService(db.uow).add_practice("p1", "Synthetic practice")
        self.workflow = Workflow(db.uow)
        self.session = self.workflow.start_session(
            StartSession(
                practice="p1",
                therapist="t-001",
                client="client-00001",
                room="room-01",
                modality="in_person",
            )
        ).id
        self.notices = Notices()
        self.service = PresenceService(CONFIG, db.uow, on_change=notice(self.notices))
        self.consumer = Consumer(CONFIG, self.service, broker, topics=self.topics, tick_every=0.1)
        self.publisher = Publisher(broker)
        self._beating = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> "Scene":
        self.consumer.start()
        assert self.consumer.connected.wait(10)
        self.publisher.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_badge()
        self.publisher.__exit__()
        self.consumer.stop()

    def send(self, *messages: Message) -> None:
        self.publisher.publish_all(messages)

    def badge(self, receiver: str = "therapy_01", distance: float = 1.2) -> Message:
        payload = f'{{"id":"badge:t-001","distance":{distance}}}'.encode()
        return Message(f"{self.topics.espresense}/devices/badge:t-001/{receiver}", payload, qos=1)

    def door(self, closed: bool) -> Message:
        payload = b'{"contact":true}' if closed else b'{"contact":false}'
        return Message(f"{self.topics.zigbee2mqtt}/room-01/door", payload, qos=1)

    def receiver(self, online: bool) -> Message:
        status = b"online" if online else b"offline"
        return Message(f"{self.topics.espresense}/rooms/therapy_01/status", status, qos=1)

    def badge_every(
        self, seconds: float, receiver: str = "therapy_01", twice: bool = False
    ) -> None:
        """Report the badge every `seconds` from `receiver` until `stop_badge`."""
        self.stop_badge()
        self._beating.clear()

        def beat() -> None:
            while not self._beating.is_set():
                message = self.badge(receiver)
                self.send(*([message, message] if twice else [message]))
                self._beating.wait(seconds)

        self._beat = threading.Thread(target=beat, daemon=True)
        self._beat.start()

    def stop_badge(self) -> None:
        self._beating.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None

    def exits(self) -> list[Exit]:
        with self.db.uow(read_only=True) as uow:
            return uow.records.exits_of_session(self.session)


def wait_for(probe: Callable[[], T], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


@pytest.fixture
def scene(db: Database, mqtt_broker: tuple[str, int]) -> Iterator[Scene]:
    with Scene(db, Broker(*mqtt_broker)) as running:
        yield running


def test_an_undeclared_exit_is_detected_then_closed(scene: Scene) -> None:
    scene.badge_every(0.3)
    time.sleep(AWAY_S + 1.5)  # a full timeout observed with the badge there
    assert scene.exits() == []
    scene.send(scene.door(closed=False))
    scene.stop_badge()
    left = time.time()
    scene.send(scene.door(closed=True))
    (x,) = wait_for(scene.exits)
    assert (x.source, x.reason, x.returned_at) == ("sensor", None, None)
    assert abs(x.left_at / MICROS_PER_SECOND - left) < 1.0  # the door's opening
    assert room_topic("p1", "room-01") in scene.notices.topics

    scene.notices.topics.clear()
    scene.badge_every(0.3)
    (back,) = wait_for(lambda: [e for e in scene.exits() if e.returned_at is not None])
    assert back.id == x.id
    assert back.returned_at is not None
    assert back.returned_at > back.left_at
    assert room_topic("p1", "room-01") in scene.notices.topics
    assert len(scene.exits()) == 1


def test_a_declared_exit_and_the_sensors_view_of_it_are_one_exit(scene: Scene) -> None:
    scene.badge_every(0.3)
    time.sleep(AWAY_S + 1.5)
    declared = scene.workflow.declare_exit(
        DeclareExit(practice="p1", session=scene.session, reason="technical")
    )
    scene.stop_badge()
    wait_for(lambda: scene.service.stats()["merged"] >= 1, timeout=AWAY_S + 8)
    assert [x.id for x in scene.exits()] == [declared.id]
    assert scene.exits()[0].source == "declared"
    scene.badge_every(0.3)
    time.sleep(2.0)
    scene.workflow.return_(Return(practice="p1", exit=declared.id, checked_in=True))
    (x,) = scene.exits()
    assert (x.id, x.source, x.reason) == (declared.id, "declared", "technical")
    assert x.returned_at is not None


def test_an_offline_receiver_never_invents_an_exit(scene: Scene) -> None:
    scene.badge_every(0.3)
    time.sleep(AWAY_S + 1.5)
    scene.send(scene.receiver(online=False))
    scene.stop_badge()  # an offline receiver reports nothing
    time.sleep(AWAY_S * 2 + 2)
    assert scene.exits() == []
    scene.send(scene.receiver(online=True))
    scene.badge_every(0.3)
    time.sleep(AWAY_S + 1.5)
    assert scene.exits() == []


def test_a_badge_seen_in_another_room_is_an_exit(scene: Scene) -> None:
    scene.badge_every(0.3)
    time.sleep(AWAY_S + 1.5)
    scene.badge_every(0.3, receiver="therapy_02")
    (x,) = wait_for(scene.exits)
    assert x.source == "sensor"
    scene.badge_every(0.3)
    wait_for(lambda: all(e.returned_at is not None for e in scene.exits()))
    assert len(scene.exits()) == 1


def test_a_badge_far_off_in_another_room_is_not_there(scene: Scene) -> None:
    """Through the wall: the next room's receiver hears the badge beyond the maximum
    distance while it is still seen in its own room."""
    scene.badge_every(0.3)
    far = scene.badge("therapy_02", distance=CONFIG.max_distance + 3)
    for _ in range(int((AWAY_S + 2) / 0.3)):
        scene.send(far)
        time.sleep(0.3)
    assert scene.exits() == []


def test_duplicate_and_reordered_messages_make_one_exit(scene: Scene) -> None:
    scene.badge_every(0.3, twice=True)  # every report delivered twice (QoS 1 redelivery)
    time.sleep(AWAY_S + 1.5)
    # The door's close overtakes its open (another topic: MQTT does not order across topics).
    scene.send(scene.door(closed=True), scene.door(closed=False), scene.door(closed=False))
    scene.stop_badge()
    (x,) = wait_for(scene.exits)
    scene.send(scene.door(closed=True), scene.door(closed=True))
    scene.badge_every(0.3, twice=True)
    wait_for(lambda: all(e.returned_at is not None for e in scene.exits()))
    time.sleep(1.0)
    (same,) = scene.exits()
    assert (same.id, same.source) == (x.id, "sensor")
    assert same.returned_at is not None
    assert scene.service.stats()["exits_begun"] == scene.service.stats()["exits_ended"] == 1
