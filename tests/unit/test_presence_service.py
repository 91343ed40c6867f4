"""The presence service on the in-memory store: a write that fails is tried again in order, a
live notice that fails loses nothing, observations from several threads are all counted, and a
call of another practice is ignored. Every id is synthetic."""

import threading

from stepout.adapters.memory import MemoryState, MemoryUnitOfWork
from stepout.domain.detection import Thresholds
from stepout.domain.events import Event
from stepout.domain.instants import MICROS_PER_SECOND, format_instant, parse_instant
from stepout.domain.presence import BadgeSeen, CallPresence, SensorsConfig
from stepout.domain.records import Exit, Session
from stepout.services.presence import ATTEMPTS, PresenceService

S = MICROS_PER_SECOND
T0 = parse_instant("2026-03-02T15:00:00+00:00")
CONFIG = SensorsConfig("p1", away_timeout=30 * S)


class Store:
    """An in-memory store whose writes fail while `down` is set."""

    def __init__(self) -> None:
        self.state = MemoryState()
        self.down = False
        with MemoryUnitOfWork(self.state) as uow:
            uow.ledger.append(
                [
                    Event("practice.created", "p1", "p1", T0, {"name": "P"}),
                    Event(
                        "session.started",
                        "p1",
                        "s1",
                        T0,
                        {
                            "practice": "p1",
                            "therapist": "t1",
                            "client": "c-1",
                            "room": "r1",
                            "modality": "in_person",
                            "start": format_instant(T0),
                            "billed_codes": [],
                        },
                    ),
                ]
            )
            uow.commit()

    def uow(self) -> MemoryUnitOfWork:
        if self.down:
            raise ConnectionError("the database is away")
        return MemoryUnitOfWork(self.state)

    def read(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.state)

    def exits(self) -> list[Exit]:
        return [r for r in self.state.records.values() if isinstance(r, Exit)]


def service(store: Store, clock: list[int], **more: object) -> PresenceService:
    return PresenceService(
        CONFIG,
        store.uow,
        read_uow=store.read,
        clock=lambda: clock[0],
        thresholds=Thresholds.of(CONFIG, reorder_window=0),
        **more,  # type: ignore[arg-type]
    )


def test_a_failed_write_is_tried_again_in_order_with_pauses() -> None:
    store, clock = Store(), [T0]
    presence = service(store, clock)
    presence.observe(BadgeSeen("t1", "r1", 1.0, T0 + S))
    store.down = True
    for step in range(2, 40):
        clock[0] = T0 + step * S
        presence.tick(clock[0])
    presence.observe(BadgeSeen("t1", "r1", 1.0, clock[0]))  # back, while the store is away
    clock[0] += S
    presence.tick(clock[0])
    stats = presence.stats()
    # First tried at +32 s, then after 0.5, 1, 2, 4 s: five failures by +40 s.
    assert (stats["failed"], stats["pending"], store.exits()) == (5, 2, [])
    store.down = False
    clock[0] += 10 * S
    presence.tick(clock[0])
    (x,) = store.exits()
    assert (x.left_at, x.returned_at) == (T0 + S, T0 + 39 * S)
    assert presence.stats()["pending"] == 0


def test_a_decision_is_dropped_after_its_attempts() -> None:
    store, clock = Store(), [T0]
    presence = service(store, clock)
    presence.tick(T0)
    store.down = True
    for step in range(1, 600):
        clock[0] = T0 + step * S
        presence.tick(clock[0])
    assert (presence.stats()["failed"], presence.stats()["pending"]) == (ATTEMPTS, 0)


def test_a_failed_notice_loses_nothing() -> None:
    store, clock = Store(), [T0]

    def broken(s: Session) -> None:
        raise RuntimeError("no listener")

    presence = service(store, clock, on_change=broken)
    clock[0] = T0 + 31 * S
    presence.tick(clock[0])
    assert len(store.exits()) == 1
    assert presence.stats()["exits_begun"] == 1


def test_observations_from_many_threads_are_all_counted() -> None:
    store, clock = Store(), [T0]
    presence = service(store, clock)
    stop = threading.Event()

    def ticking() -> None:
        while not stop.is_set():
            presence.tick(clock[0])

    def sending(k: int) -> None:
        for i in range(2000):
            presence.observe(BadgeSeen("t1", "r1", 1.0, T0 + i * 1000 + k))

    ticker = threading.Thread(target=ticking)
    ticker.start()
    senders = [threading.Thread(target=sending, args=(k,)) for k in range(4)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    stop.set()
    ticker.join()
    clock[0] = T0 + 3 * S
    presence.tick(clock[0])
    stats = presence.stats()
    assert stats["observations"] == 8000
    assert store.exits() == []


def test_a_call_of_another_practice_is_ignored() -> None:
    store, clock = Store(), [T0]
    presence = service(store, clock)
    presence.observe(CallPresence("p2", "s1", present=False, at=T0))
    assert presence.stats()["ignored"] == 1
