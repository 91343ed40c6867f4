"""A room's display, for its room token: the state now, and a Server-Sent-Event stream of it.

The stream sends the display's JSON at once, then again whenever it changes: each notice on the
room's topic (see `stepout.web.live`) wakes it to read the display afresh, and at least every
`HEARTBEAT_SECONDS` it reads again anyway (so that what changes with time alone, such as the
concern link's window closing, reaches the screen) and, when nothing changed, sends a comment
to keep proxies from closing the connection. A client that disconnects ends the stream and its
subscription: the server notices at once (ASGI spec 2.3, as uvicorn speaks), or at the next
heartbeat at the latest.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from stepout.domain.accounts import Room
from stepout.services.display import read_display
from stepout.web.audit import record_read
from stepout.web.links import concern_path
from stepout.web.live import room_topic
from stepout.web.security import RoomViewer, State, bearer_token
from stepout.web.state import AppState

router = APIRouter(tags=["room display"])

HEARTBEAT_SECONDS = 15.0  # tests shorten it
RETRY_MS: Final = 2000  # how soon a browser's EventSource reconnects after a drop

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "No room token, or not a valid one."},
    403: {"description": "The token opens another room's display."},
}
_EXAMPLE: Final = {
    "room": "room-1",
    "state": "away",
    "left_at": "2026-03-02T15:10:00+00:00",
    "explanation": "I need to step out briefly; I will be back in a few minutes.",
    "expected_back": "2026-03-02T15:15:00+00:00",
    "help": {
        "call_button": "Press the call button by the door.",
        "reception": "Reception can be reached on the room phone.",
        "emergency": "In an emergency, call 911.",
    },
    "concern_url": "https://stepout.example/c/s_01hzx3k2v8/0123456789abcdef0123456789abcdef",
}


def display_json(state: AppState, room: Room, base_url: str) -> dict[str, Any]:
    """The room's display now, with the concern link made absolute."""
    with state.db.uow(read_only=True) as uow:
        display = read_display(uow, room.practice, room.id, state.now())
    session = display.concern_session
    url = (
        None
        if session is None
        else base_url.rstrip("/") + concern_path(state.keys.link_key, session)
    )
    return display.to_json(url)


@router.get(
    "/rooms/{room}/display",
    responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}, **_AUTH},
)
def display(room: str, viewer: RoomViewer, state: State, request: Request) -> dict[str, Any]:
    """What the room's screen shows: `state` is idle, in_session or away; while away, the
    explanation given and when the therapist expects to be back; the practice's help text;
    and the concern link while a session is on and for 15 minutes after it ends. No names,
    nothing else about the client. Authorization: the room token (Bearer, or `?token=`)."""
    found = display_json(state, viewer, str(request.base_url))
    record_read(state, "display.read", viewer.id)
    return found


@router.get(
    "/rooms/{room}/display/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An event stream: `data:` the display's JSON (as from "
            "`/rooms/{room}/display`), at once and on every change; comments as heartbeats.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_AUTH,
    },
)
async def display_events(
    room: str, viewer: RoomViewer, state: State, request: Request
) -> StreamingResponse:
    """Server-Sent Events of the room's display (for an `EventSource`, use `?token=`)."""
    token = bearer_token(request) or request.query_params.get("token") or ""
    await run_in_threadpool(record_read, state, "display.read", viewer.id)  # one per stream
    stream = _events(state, viewer, token, str(request.base_url))
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(state: AppState, room: Room, token: str, base_url: str) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    last: dict[str, Any] | None = None
    with state.hub.subscribe(room_topic(room.practice, room.id)) as signal:
        while True:
            signal.clear()
            current = await run_in_threadpool(display_json, state, room, base_url)
            if current != last:
                last = current
                yield b"data: " + orjson.dumps(current) + b"\n\n"
            woken = False
            with suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), HEARTBEAT_SECONDS)
                woken = True
            if not woken:
                if not await run_in_threadpool(_still_valid, state, room, token):
                    return  # the room's token was revoked
                yield b": heartbeat\n\n"


def _still_valid(state: AppState, room: Room, token: str) -> bool:
    return state.accounts.room_of_token(token) == room
