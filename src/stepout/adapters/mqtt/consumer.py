"""The MQTT consumer: subscribe to the presence topics, parse each message, hand the
observations to a `PresenceSink`, and let time pass for it.

Threads. paho-mqtt's network thread (`loop_start`) receives the messages, connects, and
reconnects after a drop with a growing pause (`RECONNECT_S`); a timer thread calls
`sink.tick(now)` every `tick_every` seconds and logs the counters now and then. Observations
reach the sink one at a time, in the order taken; a tick may run while an observation is
handed over (a tick may write to the database, and messages must not wait for it), so a sink
takes both from different threads, as the presence service does, and holds observations for a
moment before judging them (its reorder window). The timer thread runs in a copy of the context
`start` was called in: a sink that writes to the database at its ticks finds the tenant scope
entered around `start` (`stepout.adapters.db.tenancy.scope(practice)`).

Time. An observation carries the instant the consumer takes the message (within milliseconds
of its arrival), not a time from the device: ESPresense reports carry none, and a Zigbee
coordinator's or a receiver's clock is not trusted. MQTT keeps the order of the messages of one
topic, but not across topics: a door's message may overtake the badge report sent before it.
The detector must take observations as they come.

The link. While the consumer is not connected to the broker it hears nothing, and silence must
not read as "the therapist left". So, before the first connection and after every drop, every
room it knows of is reported unavailable (a `SensorAvailability` of the sensor
`link_sensor(room)`), and available again once connected. The retained statuses of receivers
and sensors arrive again after each (re)connection.

Nothing about a message's payload is logged: counters only (`Counters`), as JSON lines through
`stepout.logs`, and exception types, never their messages.
"""

import contextvars
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from stepout.adapters.mqtt.parsing import Parser, SensorObservation, Topics
from stepout.domain.instants import Instant
from stepout.domain.presence import PresenceSink, SensorAvailability, SensorsConfig

DEFAULT_BROKER: Final = "mqtt://127.0.0.1:1883"
LINK_SENSOR: Final = "stepout:mqtt-link"  # + ":<room>": one sensor per room, as a receiver
TICK_S: Final = 0.5
LOG_EVERY_S: Final = 60.0
RECONNECT_S: Final = (1, 30)  # paho doubles the pause from the first to the second
KEEPALIVE_S: Final = 30
FAILURE_LOG_EVERY_S: Final = 10.0  # a failing sink is logged at most this often

log = logging.getLogger(__name__)


class BrokerError(ValueError):
    """A broker address that is not `mqtt://host[:port]`."""


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int = 1883

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"


def parse_broker(url: str) -> Broker:
    """`mqtt://host[:port]` (port 1883 by default)."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt":
        raise BrokerError(f"{url!r}: expected mqtt://host[:port] (TLS is not supported yet)")
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query:
        raise BrokerError(f"{url!r}: expected mqtt://host[:port] and nothing else")
    try:
        port = parts.port or 1883
    except ValueError:
        raise BrokerError(f"{url!r}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise BrokerError(f"{url!r}: no host")
    return Broker(parts.hostname, port)


@dataclass(slots=True)
class Counters:
    """What the consumer has seen since it started. Written by the network thread only."""

    received: int = 0
    observed: int = 0  # messages that became an observation
    ignored: Counter[str] = field(default_factory=Counter)  # by `parsing.Reason`
    sink_errors: int = 0  # observations the sink failed to take
    tick_errors: int = 0
    connections: int = 0
    disconnections: int = 0

    def as_dict(self) -> dict[str, int]:
        figures = {
            "received": self.received,
            "observed": self.observed,
            "sink_errors": self.sink_errors,
            "tick_errors": self.tick_errors,
            "connections": self.connections,
            "disconnections": self.disconnections,
        }
        figures.update({f"ignored.{r}": self.ignored[r] for r in sorted(self.ignored)})
        return figures


def wall_clock() -> Instant:
    """Now, as `stepout.domain.instants.now`, at a tenth of its cost (it runs per message)."""
    return time.time_ns() // 1000


def link_sensor(room: str) -> str:
    """The sensor name of the consumer's own link, for one room."""
    return f"{LINK_SENSOR}:{room}"


def known_rooms(config: SensorsConfig) -> set[str]:
    return {*config.receivers.values(), *(s.room for s in config.sensors.values())}


class _BufferedClient(mqtt.Client):
    """paho-mqtt's client, reading its socket through a buffer.

    paho reads each packet with at least three system calls (its first byte, its length, the
    rest) and handles one packet each time its loop wakes; at thousands of messages a second
    that is most of the consumer's time. Here one read takes up to `READ` bytes, later reads
    are served from them, and the loop handles every packet they hold before it waits again.
    (It relies on paho's `_sock_recv` and `loop_read`, stable through the 2.x releases.)"""

    READ: Final = 65_536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_buffer = b""
        self._read_at = 0
        self.on_socket_open = self._fresh_buffer  # a new connection starts with nothing read

    def _fresh_buffer(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._read_buffer, self._read_at = b"", 0

    def _sock_recv(self, bufsize: int) -> bytes:
        buffer, at = self._read_buffer, self._read_at
        if at >= len(buffer):
            buffer = super()._sock_recv(max(bufsize, self.READ))  # raises when nothing is there
            if not buffer:
                return buffer  # the peer closed the connection
            at = 0
        end = min(at + bufsize, len(buffer))
        self._read_buffer, self._read_at = buffer, end
        return buffer[at:end]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._read_at < len(self._read_buffer):
            rc = super().loop_read(max_packets)
        return rc


class Consumer:
    """Subscribes to the presence topics on `broker` and feeds `sink` (see the module's
    docstring). `start` returns at once; `stop` disconnects and waits for the threads."""

    def __init__(
        self,
        config: SensorsConfig,
        sink: PresenceSink,
        broker: Broker,
        *,
        topics: Topics | None = None,
        clock: Callable[[], Instant] = wall_clock,
        tick_every: float = TICK_S,
        log_every: float = LOG_EVERY_S,
        client_id: str | None = None,
    ) -> None:
        self.counters = Counters()
        self.connected = threading.Event()
        self._sink = sink
        self._broker = broker
        self._topics = topics or Topics()
        self._parser = Parser(config, self._topics)
        self._clock = clock
        self._tick_every = tick_every
        self._log_every = log_every
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._rooms = known_rooms(config)
        self._link_up = False
        self._failure_logged = 0.0
        self._ticker: threading.Thread | None = None
        self._client = _BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"stepout-sensors-{threading.get_native_id()}-{time.time_ns()}",
            clean_session=True,
        )
        self._client.reconnect_delay_set(*RECONNECT_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    # -- Running

    def start(self) -> None:
        self._link(online=False)  # nothing heard yet: no room's detection is available
        self._client.connect_async(self._broker.host, self._broker.port, KEEPALIVE_S)
        self._client.loop_start()
        context = contextvars.copy_context()
        self._ticker = threading.Thread(
            target=context.run, args=(self._tick_loop,), name="sensors-tick", daemon=True
        )
        self._ticker.start()
        log.info("sensors consumer started", extra={"target": str(self._broker)})

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join()
        self._client.disconnect()
        self._client.loop_stop()
        self._log_counters()
        log.info("sensors consumer stopped", extra={"target": str(self._broker)})

    def run_until_signalled(self) -> None:
        """Run until SIGINT or SIGTERM (from the main thread: it installs the handlers)."""
        done = threading.Event()

        def handle(signum: int, frame: FrameType | None) -> None:
            done.set()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not done.wait(1.0):
                pass
        finally:
            self.stop()
            for s, h in previous.items():
                signal.signal(s, h)

    # -- paho's callbacks (network thread)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt connection refused", extra={"outcome": reason.getName()})
            return
        client.subscribe([(t, 1) for t in self._topics.subscriptions()])
        self.counters.connections += 1
        log.info("mqtt connected", extra={"target": str(self._broker)})
        self._link(online=True)
        self.connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        self.connected.clear()
        if self._stopping.is_set():
            return
        self.counters.disconnections += 1
        log.warning("mqtt connection lost", extra={"outcome": reason.getName()})
        self._link(online=False)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        counters = self.counters
        counters.received += 1
        with self._lock:
            at = self._clock()
            try:
                result = self._parser.parse(message.topic, message.payload, at)
            except Exception:  # a parser bug must not stop the consumer; never the payload
                counters.ignored["parser_error"] += 1
                self._failed("sensor message not parsed")
                return
            if isinstance(result, str):
                counters.ignored[result] += 1
                return
            counters.observed += 1
            self._rooms.add(result.room)
            self._observe(result)

    # -- The sink

    def _observe(self, observation: SensorObservation) -> None:
        try:
            self._sink.observe(observation)
        except Exception:
            self.counters.sink_errors += 1
            self._failed("sensor observation failed")

    def _link(self, *, online: bool) -> None:
        with self._lock:
            if online == self._link_up and online:
                return
            self._link_up = online
            at = self._clock()
            for room in sorted(self._rooms):
                self._observe(SensorAvailability(link_sensor(room), room, online, at))

    def _tick_loop(self) -> None:
        next_log = time.monotonic() + self._log_every
        while not self._stopping.wait(self._tick_every):
            try:
                self._sink.tick(self._clock())
            except Exception:
                self.counters.tick_errors += 1
                self._failed("sensor tick failed")
            if time.monotonic() >= next_log:
                next_log += self._log_every
                self._log_counters()

    def _failed(self, event: str) -> None:
        moment = time.monotonic()
        if moment - self._failure_logged >= FAILURE_LOG_EVERY_S:
            self._failure_logged = moment
            log.error(event, exc_info=True)

    def _log_counters(self) -> None:
        """One JSON line per counter (the log's fields are ids and figures: `action` names the
        counter, `count` its value since start; `seq` groups one snapshot's lines)."""
        snapshot = self.counters.as_dict()
        seq = time.time_ns() // 1_000_000
        for name, value in snapshot.items():
            kind, _, reason = name.partition(".")
            extra: dict[str, Any] = {"action": kind, "count": value, "seq": seq}
            if reason:
                extra["outcome"] = reason
            log.info("sensor counts", extra=extra)
