"""Live updates: who must hear that a room or a therapist's sessions changed.

A command handler calls `Notifier.notify(topics)` after its unit of work commits. Inside one
process a `Hub` wakes the Server-Sent-Event streams waiting on those topics; each stream then
reads the current state itself, so a notice carries no data, only a topic. With PostgreSQL,
notices go through NOTIFY on one channel and every `stepout serve` process LISTENs to it and
feeds its own hub, so that a display connected to any worker hears a change made on any other.
"""

import asyncio
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Final, Protocol

CHANNEL: Final = "stepout_live"

log = logging.getLogger(__name__)


def room_topic(practice: str, room: str) -> str:
    return f"room:{practice}:{room}"


def therapist_topic(practice: str, therapist: str) -> str:
    return f"therapist:{practice}:{therapist}"


class Hub:
    """Fan-out of notices to the streams of one process. `publish` may be called from any
    thread; waiting happens on the event loop the hub is bound to."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, topics: Iterable[str]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        wanted = tuple(topics)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake(wanted)
        else:
            with suppress(RuntimeError):  # the loop closed meanwhile: nobody is listening
                loop.call_soon_threadsafe(self._wake, wanted)

    def publish_all(self) -> None:
        """Wake every stream (after a gap in which notices may have been lost)."""
        self.publish(tuple(self._waiting))

    def _wake(self, topics: tuple[str, ...]) -> None:
        for topic in topics:
            for signal in self._waiting.get(topic, ()):
                signal.set()

    @contextmanager
    def subscribe(self, topic: str) -> Iterator[asyncio.Event]:
        """An event set at every notice on `topic` (the stream clears it before reading)."""
        signal = asyncio.Event()
        self._waiting.setdefault(topic, set()).add(signal)
        try:
            yield signal
        finally:
            waiting = self._waiting.get(topic)
            if waiting is not None:
                waiting.discard(signal)
                if not waiting:
                    del self._waiting[topic]

    def subscribers(self, topic: str) -> int:
        return len(self._waiting.get(topic, ()))


class Notifier(Protocol):
    def notify(self, topics: Iterable[str]) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class LocalNotifier:
    """One process (SQLite): notices go straight to the hub."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def notify(self, topics: Iterable[str]) -> None:
        self._hub.publish(topics)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class PostgresNotifier:
    """Several processes on one PostgreSQL database: NOTIFY out, LISTEN in on a thread that
    feeds this process's hub (its own notices come back that way too)."""

    def __init__(self, hub: Hub, dsn: str) -> None:
        import psycopg

        self._hub = hub
        self._dsn = dsn
        self._send = psycopg.connect(dsn, autocommit=True)
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def notify(self, topics: Iterable[str]) -> None:
        with self._send_lock:
            for topic in topics:
                self._send.execute("SELECT pg_notify(%s, %s)", (CHANNEL, topic))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="stepout-listen", daemon=True)
        self._thread.start()
        if not self._listening.wait(10):
            raise RuntimeError("could not LISTEN for live updates on PostgreSQL")

    def _listen(self) -> None:
        import psycopg

        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if self._listening.is_set():  # a reconnection: notices may be lost
                        self._hub.publish_all()
                    self._listening.set()
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            self._hub.publish((notice.payload,))
            except psycopg.Error:
                log.warning("live updates: lost the PostgreSQL connection; reconnecting")
                self._stopping.wait(1)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._send_lock:
            self._send.close()
