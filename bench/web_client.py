"""The load generator's client side: HTTP/1.1 keep-alive connections on raw asyncio streams
(uvloop), one connection per simulated client, and Server-Sent-Event readers for the room
displays. Each function here runs in a client process of its own (see web_load.py) and
returns plain figures: latencies in seconds, counts, and the process's CPU time.

Why not httpx or aiohttp: per request they cost several times the CPU of this client, and on
a 2-core machine the generator must leave the server a core. Why not wrk: a cycle is two
requests on one connection, the second naming the exit the first created, which wrk's Lua
hooks cannot pair with their connection. (wrk is used, when installed, to cross-check the
bare endpoint's figure.)
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

HOST = "127.0.0.1"
EXIT_BODY = orjson.dumps(
    {
        "reason": "technical",
        "explanation": "Synthetic: the projector needs a restart, back in two minutes.",
        "client_informed": True,
        "safeguards": ["records_secured", "screen_locked", "door_closed"],
        "expected_minutes": 2,
    }
)
RETURN_BODY = orjson.dumps({"checked_in": True})


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> "Connection":
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, auth: bytes = b"", body: bytes | None = None
    ) -> tuple[int, bytes]:
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n%s" % (
            method.encode(),
            path.encode(),
            HOST.encode(),
            auth,
        )
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.writer.write(head + b"\r\n" + (body or b""))
        return await self.response()

    async def response(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            length = int(lower[at + 17 : end])
            return status, await self.reader.readexactly(length)
        if b"\r\ntransfer-encoding: chunked" in lower:
            parts = []
            while True:
                chunk = await self._chunk()
                if not chunk:
                    return status, b"".join(parts)
                parts.append(chunk)
        raise HttpError(f"a response without a length (status {status})")

    async def head(self) -> int:
        """Read a streaming response's head; its body follows in chunks."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        return int(head[9:12])

    async def _chunk(self) -> bytes:
        size = int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    def close(self) -> None:
        self.writer.close()


def bearer(token: str) -> bytes:
    return b"Authorization: Bearer %s\r\n" % token.encode()


@dataclass
class Tally:
    """What one client process saw in the measured window."""

    start: float
    end: float
    latencies: list[float] = field(default_factory=list)  # per cycle (or request)
    requests: list[float] = field(default_factory=list)  # per request, within cycles
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def result(self, cpu: float) -> dict[str, Any]:
        return {
            "latencies": self.latencies,
            "requests": self.requests,
            "errors": self.errors,
            "cpu_s": cpu,
        }


async def _until(at: float) -> None:
    delay = at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _run_clients(
    port: int,
    count: int,
    start: float,
    end: float,
    step: Callable[[Connection, int, Tally], Awaitable[None]],
) -> dict[str, Any]:
    tally = Tally(start, end)
    conns = [await Connection.open(port) for _ in range(count)]

    async def client(i: int) -> None:
        conn = conns[i]
        while time.monotonic() < end:
            try:
                await step(conn, i, tally)
            except (OSError, asyncio.IncompleteReadError, HttpError) as e:
                tally.error(type(e).__name__)
                conn.close()
                conns[i] = conn = await Connection.open(port)

    await _until(start - 1.0)  # one second of warm-up, not counted
    cpu = time.process_time()
    await asyncio.gather(*(client(i) for i in range(count)))
    cpu = time.process_time() - cpu
    for conn in conns:
        conn.close()
    return tally.result(cpu)


def health(port: int, path: str, count: int, start: float, end: float) -> dict[str, Any]:
    """`count` clients requesting the bare ASGI endpoint back to back."""

    async def step(conn: Connection, _i: int, tally: Tally) -> None:
        t0 = time.monotonic()
        status, _ = await conn.request("GET", path)
        t1 = time.monotonic()
        if status != 200:
            tally.error(f"healthz {status}")
        elif tally.start <= t1 <= tally.end:
            tally.latencies.append(t1 - t0)

    return _uvloop(_run_clients(port, count, start, end, step))


def cycles(port: int, clients: list[dict[str, str]], start: float, end: float) -> dict[str, Any]:
    """Each client (its own therapist, token and session) declares an exit and returns,
    back to back. A cycle's latency runs from sending the exit to the return's answer."""
    auths = [bearer(c["token"]) for c in clients]
    paths = [f"/api/v1/sessions/{c['session']}/exits" for c in clients]

    async def step(conn: Connection, i: int, tally: Tally) -> None:
        t0 = time.monotonic()
        status, body = await conn.request("POST", paths[i], auths[i], EXIT_BODY)
        t1 = time.monotonic()
        if status != 201:
            tally.error(f"exit {status}")
            await _return_open_exits(conn, clients[i], auths[i])
            return
        exit_id = orjson.loads(body)["id"]
        status, body = await conn.request(
            "POST", f"/api/v1/exits/{exit_id}/return", auths[i], RETURN_BODY
        )
        t2 = time.monotonic()
        if status != 200:
            tally.error(f"return {status}")
        elif tally.start <= t2 <= tally.end:
            tally.latencies.append(t2 - t0)
            tally.requests.extend((t1 - t0, t2 - t1))

    return _uvloop(_run_clients(port, len(clients), start, end, step))


async def _return_open_exits(conn: Connection, client: dict[str, str], auth: bytes) -> None:
    """After a failed exit: end whatever exit is still open, so the next cycle can start."""
    status, body = await conn.request("GET", f"/api/v1/sessions/{client['session']}", auth)
    if status != 200:
        return
    for x in orjson.loads(body).get("exits", []):
        if x.get("open"):
            await conn.request("POST", f"/api/v1/exits/{x['id']}/return", auth, RETURN_BODY)


# Displays


class Display:
    """One room display's SSE stream: the states it shows, with the instant each arrived."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.state: str | None = None
        self.events = 0
        self.waiting: tuple[str, asyncio.Future[float]] | None = None
        self.ready = asyncio.Event()

    def expect(self, state: str) -> "asyncio.Future[float]":
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting = (state, future)
        return future

    def seen(self, data: bytes, at: float) -> None:
        self.events += 1
        self.state = orjson.loads(data)["state"]
        self.ready.set()
        if self.waiting is not None and self.waiting[0] == self.state:
            future, self.waiting = self.waiting[1], None
            if not future.done():
                future.set_result(at)


async def _follow(port: int, path: str, display: Display) -> None:
    conn = await Connection.open(port)
    try:
        conn.writer.write(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n"
            % (path.encode(), HOST.encode())
        )
        status = await conn.head()
        if status != 200:
            raise HttpError(f"display stream {status}")
        buffer = b""
        while True:
            chunk = await conn._chunk()
            if not chunk:
                return
            at = time.monotonic()
            buffer += chunk
            *events, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
            for event in events:
                data = b"\n".join(
                    line[5:].lstrip(b" ")
                    for line in event.split(b"\n")
                    if line.startswith(b"data:")
                )
                if data:
                    display.seen(data, at)
    finally:
        conn.close()


def displays(
    port: int,
    rooms: list[dict[str, str]],
    drivers: int,
    start: float,
    end: float,
) -> dict[str, Any]:
    """Every room's display follows its SSE stream; `drivers` clients cycle through the
    rooms (exit, wait for the display to show "away", return, wait for "in_session") and
    time each request to the display's event."""

    async def main() -> dict[str, Any]:
        shown = {r["room"]: Display(r["room"]) for r in rooms}
        followers = [
            asyncio.create_task(
                _follow(
                    port,
                    f"/api/v1/rooms/{r['room']}/display/events?token={r['room_token']}",
                    shown[r["room"]],
                )
            )
            for r in rooms
        ]
        connected = time.monotonic()
        waiting = asyncio.gather(*(d.ready.wait() for d in shown.values()))
        try:
            await asyncio.wait_for(waiting, 60)
        except TimeoutError:
            failed = [f.exception() for f in followers if f.done() and f.exception()]
            raise HttpError(f"displays did not all connect: {failed[:3]}") from None
        connect_s = time.monotonic() - connected
        away: list[float] = []
        back: list[float] = []
        after: list[float] = []  # from each request's answer to its display's event
        missed: dict[str, int] = {}
        errors: dict[str, int] = {}
        conns = [await Connection.open(port) for _ in range(drivers)]

        async def driver(d: int) -> None:
            mine = rooms[d::drivers]
            auths = [bearer(r["token"]) for r in mine]
            turn = 0
            while time.monotonic() < end:
                k = turn % len(mine)
                turn += 1
                room, auth = mine[k], auths[k]
                display = shown[room["room"]]
                future = display.expect("away")
                t0 = time.monotonic()
                status, body = await conns[d].request(
                    "POST", f"/api/v1/sessions/{room['session']}/exits", auth, EXIT_BODY
                )
                if status != 201:
                    errors[f"exit {status}"] = errors.get(f"exit {status}", 0) + 1
                    await _return_open_exits(conns[d], room, auth)
                    continue
                answered = time.monotonic()
                exit_id = orjson.loads(body)["id"]
                await _timed(future, t0, answered, away, after, missed, "away", start)
                future = display.expect("in_session")
                t0 = time.monotonic()
                status, _ = await conns[d].request(
                    "POST", f"/api/v1/exits/{exit_id}/return", auth, RETURN_BODY
                )
                answered = time.monotonic()
                if status != 200:
                    errors[f"return {status}"] = errors.get(f"return {status}", 0) + 1
                    continue
                await _timed(future, t0, answered, back, after, missed, "in_session", start)

        await _until(start - 1.0)
        cpu = time.process_time()
        await asyncio.gather(*(driver(d) for d in range(drivers)))
        cpu = time.process_time() - cpu
        for f in followers:
            f.cancel()
        for c in conns:
            c.close()
        await asyncio.gather(*followers, return_exceptions=True)
        events = sum(d.events for d in shown.values())
        return {
            "away": away,
            "in_session": back,
            "after_answer": after,
            "missed": missed,
            "errors": errors,
            "connect_s": connect_s,
            "events": events,
            "cpu_s": cpu,
        }

    return _uvloop(main())


async def _timed(
    future: "asyncio.Future[float]",
    sent: float,
    answered: float,
    into: list[float],
    after: list[float],
    missed: dict[str, int],
    state: str,
    start: float,
) -> None:
    """Wait for the display's event: time it from the request (and from the answer)."""
    try:
        at = await asyncio.wait_for(future, 5.0)
    except TimeoutError:
        missed[state] = missed.get(state, 0) + 1
        return
    if sent >= start:
        into.append(at - sent)
        after.append(at - answered)


def _uvloop(main: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    import uvloop

    async def wrapped() -> dict[str, Any]:
        return await main

    return uvloop.run(wrapped())
