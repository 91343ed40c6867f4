"""Live updates: who must hear that a room or a therapist's sessions changed.

A command handler calls `Notifier.notify(topics)` after its unit of work commits. Inside one
process a `Hub` wakes the Server-Sent-Event streams waiting on those topics; each stream then
reads the current state itself, so a notice carries no data, only a topic (a room or a
therapist id, never anything about a client). With PostgreSQL, notices also go out through
NOTIFY on one channel; every `stepout serve` process LISTENs to it on a thread of its own and
feeds its hub, so that a display connected to any worker hears a change made on any other.

What can go wrong, and what happens then:
- the LISTEN connection drops: the thread reconnects (with a growing pause) and then wakes
  every stream of its process, since notices sent meanwhile are lost (each stream rereads);
- the NOTIFY connection drops: the next notice reconnects and is sent again once; if that
  fails too it is logged and dropped (the command itself has committed: a request never
  fails for want of a notice), and this process's own streams have been woken anyway.
"""

import asyncio
import logging
import secrets
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson

if TYPE_CHECKING:
    import psycopg

CHANNEL: Final = "stepout_live"
MAX_PAYLOAD: Final = 7_900  # bytes; PostgreSQL refuses a NOTIFY payload of 8,000 or more
CONNECT_TIMEOUT_S: Final = 5
POLL_S: Final = 0.5  # how often the LISTEN thread looks up from waiting (to see `stop`)
RETRY_S: Final = (0.1, 0.5, 1.0, 2.0, 5.0)  # pauses between reconnections, the last repeats

log = logging.getLogger(__name__)


def room_topic(practice: str, room: str) -> str:
    return f"room:{practice}:{room}"


def therapist_topic(practice: str, therapist: str) -> str:
    return f"therapist:{practice}:{therapist}"


class Hub:
    """Fan-out of notices to the streams of one process.

    `publish` and `publish_all` may be called from any thread (request handlers run in a
    thread pool, the LISTEN thread is another); the signals are set on the event loop the hub
    is bound to (`bind`, at start-up; else the loop of the first `subscribe`). `subscribe` is
    called on that loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, topics: Iterable[str]) -> None:
        """Set the signal of every stream subscribed to one of `topics`."""
        wanted = tuple(topics)
        if wanted:
            self._on_loop(self._wake, wanted)

    def publish_all(self) -> None:
        """Wake every stream (after a gap in which notices may have been lost)."""
        self._on_loop(self._wake_all)

    def _on_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not serving (yet, or any more): nobody is listening
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            with suppress(RuntimeError):  # the loop closed meanwhile: nobody is listening
                loop.call_soon_threadsafe(fn, *args)

    def _wake(self, topics: tuple[str, ...]) -> None:
        for topic in topics:
            for signal in self._waiting.get(topic, ()):
                signal.set()

    def _wake_all(self) -> None:
        for signals in self._waiting.values():
            for signal in signals:
                signal.set()

    @contextmanager
    def subscribe(self, topic: str, *more: str) -> Iterator[asyncio.Event]:
        """An event set at every notice on `topic` (or any of `more`); the stream clears it
        before it reads the state, so that a notice arriving during the read is not lost."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        signal = asyncio.Event()
        topics = (topic, *more)
        for t in topics:
            self._waiting.setdefault(t, set()).add(signal)
        try:
            yield signal
        finally:
            for t in topics:
                waiting = self._waiting.get(t)
                if waiting is not None:
                    waiting.discard(signal)
                    if not waiting:
                        del self._waiting[t]

    def subscribers(self, topic: str) -> int:
        return len(self._waiting.get(topic, ()))

    def topics(self) -> int:
        """How many topics have at least one stream waiting."""
        return len(self._waiting)


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


def encode(origin: str, topics: tuple[str, ...]) -> list[str]:
    """NOTIFY payloads for `topics` from the process `origin`: as few as fit PostgreSQL's
    limit. A topic too long for any payload becomes a wake-all notice."""
    payloads: list[str] = []
    batch: list[str] = []
    size = 0
    for topic in topics:
        cost = len(orjson.dumps(topic)) + 1
        if cost + 40 > MAX_PAYLOAD:
            payloads.append(orjson.dumps({"from": origin, "all": True}).decode())
            continue
        if batch and size + cost + 40 > MAX_PAYLOAD:
            payloads.append(orjson.dumps({"from": origin, "topics": batch}).decode())
            batch, size = [], 0
        batch.append(topic)
        size += cost
    if batch:
        payloads.append(orjson.dumps({"from": origin, "topics": batch}).decode())
    return payloads


def decode(payload: str) -> tuple[str | None, tuple[str, ...] | None]:
    """(origin, topics) of a payload; topics None means every topic. A payload that is not
    ours (say, `NOTIFY stepout_live, 'room:p1:r1'` typed by an operator) is one topic."""
    if payload.startswith("{"):
        with suppress(orjson.JSONDecodeError):
            found = orjson.loads(payload)
            if isinstance(found, dict):
                origin = found.get("from")
                origin = origin if isinstance(origin, str) else None
                if found.get("all") is True:
                    return origin, None
                topics = found.get("topics")
                if isinstance(topics, list):
                    return origin, tuple(t for t in topics if isinstance(t, str))
    return None, (payload,)


class PostgresNotifier:
    """Several processes on one PostgreSQL database: the process's own streams are woken at
    once; NOTIFY tells the others, whose LISTEN threads feed their hubs (a process skips its
    own notices when they come back)."""

    def __init__(self, hub: Hub, dsn: str) -> None:
        self._hub = hub
        self._dsn = dsn
        self.origin = secrets.token_hex(8)
        self._send: psycopg.Connection[Any] | None = None
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self.reconnections = 0  # of the LISTEN connection, since start

    def notify(self, topics: Iterable[str]) -> None:
        wanted = tuple(dict.fromkeys(topics))
        if not wanted:
            return
        self._hub.publish(wanted)
        payloads = encode(self.origin, wanted)
        with self._send_lock:
            for attempt in (1, 2):
                if self._stopping.is_set():
                    return
                try:
                    self._sender().execute(
                        "SELECT " + ", ".join(["pg_notify(%s, %s)"] * len(payloads)),
                        [v for p in payloads for v in (CHANNEL, p)],
                    )
                    return
                except Exception as e:
                    self._close_sender()
                    if attempt == 2:
                        log.warning(
                            "live updates: could not NOTIFY the other workers (%s); their "
                            "displays catch up at their next change",
                            type(e).__name__,
                        )

    def _sender(self) -> "psycopg.Connection[Any]":
        if self._send is None or self._send.closed:
            self._send = _connect(self._dsn)
        return self._send

    def _close_sender(self) -> None:
        send, self._send = self._send, None
        if send is not None:
            with suppress(Exception):
                send.close()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return  # started already (an app whose lifespan runs twice)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._listen, name="stepout-listen", daemon=True)
        self._thread.start()
        if not self._listening.wait(CONNECT_TIMEOUT_S * 2):
            self.stop()
            raise RuntimeError(
                "could not LISTEN for live updates on PostgreSQL: is the database reachable?"
            )

    def _listen(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with _connect(self._dsn) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if self._listening.is_set():  # a reconnection: notices may be lost
                        self.reconnections += 1
                        log.info("live updates: listening again; waking every display")
                        self._hub.publish_all()
                    self._listening.set()
                    failures = 0
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=POLL_S):
                            self._receive(notice.payload)
            except Exception as e:
                if self._stopping.is_set():
                    return
                pause = RETRY_S[min(failures, len(RETRY_S) - 1)]
                failures += 1
                log.warning(
                    "live updates: the PostgreSQL LISTEN connection failed (%s); "
                    "retrying in %.1f s",
                    type(e).__name__,
                    pause,
                )
                self._stopping.wait(pause)

    def _receive(self, payload: str) -> None:
        origin, topics = decode(payload)
        if origin == self.origin:
            return  # published to this process's hub when it was sent
        if topics is None:
            self._hub.publish_all()
        else:
            self._hub.publish(topics)

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(CONNECT_TIMEOUT_S + POLL_S * 2)
        with self._send_lock:
            self._close_sender()
        self._listening.clear()


def _connect(dsn: str) -> "psycopg.Connection[Any]":
    """An autocommit connection; TCP keepalives notice a peer gone without a word (a failed
    host) within about a minute."""
    import psycopg

    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )
