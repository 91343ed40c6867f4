"""The live-update plumbing on its own: the per-process hub, the NOTIFY payloads, and the
PostgreSQL notifier between two hubs (as two workers would have), including its recovery
when either of its connections is cut."""

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from stepout.web.live import (
    CHANNEL,
    MAX_PAYLOAD,
    Hub,
    LocalNotifier,
    PostgresNotifier,
    decode,
    encode,
    room_topic,
    therapist_topic,
)

ROOM = room_topic("pa", "room-1")
OTHER = room_topic("pa", "room-2")


def run(test: Callable[[Hub], Awaitable[None]]) -> None:
    async def main() -> None:
        hub = Hub()
        hub.bind(asyncio.get_running_loop())
        await test(hub)

    asyncio.run(main())


async def woken(signal: asyncio.Event, within: float = 1.0) -> bool:
    try:
        await asyncio.wait_for(signal.wait(), within)
    except TimeoutError:
        return False
    return True


def from_thread(action: Callable[[], None]) -> None:
    thread = threading.Thread(target=action)
    thread.start()
    thread.join()


def test_topics_name_the_practice_and_the_room_or_therapist() -> None:
    assert room_topic("pa", "room-1") == "room:pa:room-1"
    assert therapist_topic("pa", "a-ther") == "therapist:pa:a-ther"


def test_a_publish_from_another_thread_wakes_the_subscriber_of_that_topic_only() -> None:
    async def test(hub: Hub) -> None:
        with hub.subscribe(ROOM) as mine, hub.subscribe(OTHER) as other:
            from_thread(lambda: hub.publish([ROOM]))
            assert await woken(mine)
            assert not other.is_set()

    run(test)


def test_a_publish_on_the_loop_itself_wakes_at_once() -> None:
    async def test(hub: Hub) -> None:
        with hub.subscribe(ROOM) as signal:
            hub.publish([ROOM])
            assert signal.is_set()  # no hop through the loop's queue

    run(test)


def test_every_subscriber_of_a_topic_is_woken_and_a_cleared_signal_wakes_again() -> None:
    async def test(hub: Hub) -> None:
        with hub.subscribe(ROOM) as one, hub.subscribe(ROOM) as two:
            assert hub.subscribers(ROOM) == 2
            from_thread(lambda: hub.publish([ROOM]))
            assert await woken(one)
            assert await woken(two)
            one.clear()
            from_thread(lambda: hub.publish([ROOM, ROOM]))
            assert await woken(one)

    run(test)


def test_a_subscription_on_several_topics_wakes_on_any_of_them() -> None:
    async def test(hub: Hub) -> None:
        therapist = therapist_topic("pa", "a-ther")
        with hub.subscribe(ROOM, therapist) as signal:
            from_thread(lambda: hub.publish([therapist]))
            assert await woken(signal)
        assert hub.topics() == 0

    run(test)


def test_leaving_a_subscription_cleans_up_even_on_error() -> None:
    async def test(hub: Hub) -> None:
        with hub.subscribe(ROOM), hub.subscribe(ROOM):
            assert hub.subscribers(ROOM) == 2
        assert hub.subscribers(ROOM) == 0
        assert hub.topics() == 0
        with pytest.raises(ValueError, match="stream gone"), hub.subscribe(ROOM):
            raise ValueError("stream gone")
        assert hub.topics() == 0
        hub.publish([ROOM])  # nobody left: nothing to do, nothing raised

    run(test)


def test_publish_all_wakes_every_topic() -> None:
    async def test(hub: Hub) -> None:
        with hub.subscribe(ROOM) as one, hub.subscribe(OTHER) as two:
            from_thread(hub.publish_all)
            assert await woken(one)
            assert await woken(two)

    run(test)


def test_publish_all_from_a_thread_is_safe_while_the_loop_subscribes() -> None:
    """publish_all never walks the subscriptions off the loop: no 'dict changed size'."""

    async def test(hub: Hub) -> None:
        stop = threading.Event()
        errors: list[BaseException] = []

        def hammer() -> None:
            try:
                while not stop.is_set():
                    hub.publish_all()
            except BaseException as e:
                errors.append(e)

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            for i in range(2_000):
                with hub.subscribe(f"room:pa:r{i}"):
                    await asyncio.sleep(0)
        finally:
            stop.set()
            thread.join()
        assert errors == []

    run(test)


def test_a_hub_not_serving_drops_notices_quietly() -> None:
    hub = Hub()
    hub.publish([ROOM])  # never bound
    hub.publish_all()
    loop = asyncio.new_event_loop()
    hub.bind(loop)
    loop.close()
    hub.publish([ROOM])  # bound to a loop that has closed


def test_a_hub_binds_to_the_loop_of_its_first_subscriber() -> None:
    async def main() -> None:
        hub = Hub()
        with hub.subscribe(ROOM) as signal:
            from_thread(lambda: hub.publish([ROOM]))
            assert await woken(signal)

    asyncio.run(main())


def test_the_local_notifier_publishes_to_its_hub() -> None:
    async def test(hub: Hub) -> None:
        notifier = LocalNotifier(hub)
        notifier.start()
        with hub.subscribe(ROOM) as signal:
            from_thread(lambda: notifier.notify([ROOM]))
            assert await woken(signal)
        notifier.stop()

    run(test)


# NOTIFY payloads


def test_a_payload_carries_its_origin_and_topics() -> None:
    [payload] = encode("w1", (ROOM, OTHER))
    assert decode(payload) == ("w1", (ROOM, OTHER))


def test_topics_beyond_one_payload_are_split_and_a_giant_topic_wakes_everything() -> None:
    topics = tuple(f"room:pa:{'r' * 1000}{i}" for i in range(20))
    payloads = encode("w1", topics)
    assert len(payloads) > 1
    assert all(len(p.encode()) < MAX_PAYLOAD for p in payloads)
    assert tuple(t for p in payloads for t in decode(p)[1] or ()) == topics
    assert [decode(p) for p in encode("w1", ("x" * MAX_PAYLOAD,))] == [("w1", None)]


def test_a_foreign_payload_is_one_topic() -> None:
    assert decode("room:pa:room-1") == (None, ("room:pa:room-1",))
    assert decode("{not json") == (None, ("{not json",))
    assert decode('{"topics": 3}') == (None, ('{"topics": 3}',))


# PostgreSQL: two notifiers on one database stand for two workers


@pytest.fixture
def dsn(postgres_url: str) -> str:
    return postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)


class Worker:
    """A hub on its own loop thread with a PostgresNotifier, as in one server process."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hub = Hub()
        self.hub.bind(self.loop)
        self.notifier = PostgresNotifier(self.hub, dsn)
        self.notifier.start()

    def watch(self, *topics: str) -> "Watch":
        return Watch(self, topics)

    def close(self) -> None:
        self.notifier.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Watch:
    """Counts the wake-ups of one subscription (the subscription lives on the worker's loop)."""

    def __init__(self, worker: Worker, topics: tuple[str, ...]) -> None:
        self.wakes = 0
        self.changed = threading.Condition()
        ready = threading.Event()

        async def follow() -> None:
            with worker.hub.subscribe(*topics) as signal:
                ready.set()
                while True:
                    await signal.wait()
                    signal.clear()
                    with self.changed:
                        self.wakes += 1
                        self.changed.notify_all()

        self.task: Any = asyncio.run_coroutine_threadsafe(follow(), worker.loop)
        assert ready.wait(5)

    def wait_for(self, wakes: int, within: float = 2.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.wakes >= wakes, within)


@pytest.fixture
def workers(dsn: str) -> Iterator[tuple[Worker, Worker]]:
    one, two = Worker(dsn), Worker(dsn)
    try:
        yield one, two
    finally:
        one.close()
        two.close()


def backends(dsn: str, query: str) -> list[int]:
    """Process ids of the sessions on this database whose last statement matches."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND query ILIKE %s",
            (query,),
        ).fetchall()
    return [r[0] for r in rows]


def terminate(dsn: str, pids: list[int]) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
def test_a_notice_on_one_worker_reaches_the_other_and_its_own_streams_at_once(
    workers: tuple[Worker, Worker],
) -> None:
    one, two = workers
    here, there, elsewhere = one.watch(ROOM), two.watch(ROOM), two.watch(OTHER)
    started = time.monotonic()
    one.notifier.notify([ROOM])
    assert here.wait_for(1, 0.5)
    assert there.wait_for(1, 1.0)
    assert time.monotonic() - started < 1.0
    time.sleep(0.2)
    assert here.wakes == 1, "a worker's own notice, coming back through LISTEN, is skipped"
    assert there.wakes == 1
    assert elsewhere.wakes == 0


@pytest.mark.postgres
def test_many_notices_from_both_workers_all_arrive(workers: tuple[Worker, Worker]) -> None:
    one, two = workers
    watches = {(w, t): w.watch(room_topic("pa", f"r{t}")) for w in (one, two) for t in range(10)}
    for t in range(10):
        (one if t % 2 else two).notifier.notify([room_topic("pa", f"r{t}")])
    for watch in watches.values():
        assert watch.wait_for(1)


@pytest.mark.postgres
def test_an_operator_notify_by_hand_reaches_the_workers(
    workers: tuple[Worker, Worker], dsn: str
) -> None:
    one, _two = workers
    watch = one.watch(ROOM)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, ROOM))
    assert watch.wait_for(1)


@pytest.mark.postgres
def test_after_the_listen_connection_is_cut_the_worker_reconnects_and_wakes_everything(
    workers: tuple[Worker, Worker], dsn: str
) -> None:
    one, two = workers
    watch, other = two.watch(ROOM), two.watch(OTHER)
    pids = backends(dsn, "LISTEN %")
    assert len(pids) == 2
    terminate(dsn, pids)
    # Woken by the reconnection itself, since notices may have been lost in the gap.
    assert watch.wait_for(1, 5.0)
    assert other.wait_for(1, 5.0)
    assert two.notifier.reconnections == 1
    one.notifier.notify([ROOM])
    assert watch.wait_for(2, 2.0)


@pytest.mark.postgres
def test_after_the_notify_connection_is_cut_the_next_notice_still_goes_out(
    workers: tuple[Worker, Worker], dsn: str
) -> None:
    one, two = workers
    watch = two.watch(ROOM)
    one.notifier.notify([ROOM])
    assert watch.wait_for(1)
    terminate(dsn, backends(dsn, "SELECT pg_notify%"))
    time.sleep(0.1)
    one.notifier.notify([ROOM])
    assert watch.wait_for(2)


@pytest.mark.postgres
def test_a_notice_that_cannot_be_sent_is_logged_not_raised(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def test(hub: Hub) -> None:
        notifier = PostgresNotifier(hub, dsn.rpartition("/")[0] + "/no_such_database")
        with hub.subscribe(ROOM) as signal:
            await asyncio.to_thread(notifier.notify, [ROOM])
            assert await woken(signal), "this worker's own streams are woken regardless"
        notifier.stop()

    run(test)
    assert "could not NOTIFY the other workers" in caplog.text


@pytest.mark.postgres
def test_a_worker_that_cannot_listen_refuses_to_start(dsn: str, monkeypatch: Any) -> None:
    monkeypatch.setattr("stepout.web.live.CONNECT_TIMEOUT_S", 1)
    notifier = PostgresNotifier(Hub(), dsn.rpartition("/")[0] + "/no_such_database")
    with pytest.raises(RuntimeError, match="could not LISTEN"):
        notifier.start()


@pytest.mark.postgres
def test_a_notifier_started_twice_listens_once_and_stops_cleanly(dsn: str) -> None:
    notifier = PostgresNotifier(Hub(), dsn)
    notifier.start()
    notifier.start()
    assert len(backends(dsn, "LISTEN %")) == 1
    notifier.stop()
    notifier.stop()
    notifier.notify([ROOM])  # after stop: dropped quietly, no connection opened
    assert backends(dsn, "%pg_notify%") == []
