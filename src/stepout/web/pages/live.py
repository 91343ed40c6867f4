"""A therapist's own screens stay current: a Server-Sent-Event stream that says "changed"
whenever one of their sessions or exits changes, from this browser, another device or the API.
The page then fetches itself again (static/app.js) unless the therapist is typing in a form.
The stream carries no record data: the page reads what it shows through the usual checks."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Final

from fastapi import Request
from fastapi.responses import StreamingResponse

from stepout.domain.accounts import User
from stepout.web.live import therapist_topic
from stepout.web.pages.routing import page_router
from stepout.web.security import PageSession, State, require
from stepout.web.state import AppState

router = page_router()

HEARTBEAT_SECONDS = 15.0  # tests shorten it
RETRY_MS: Final = 2000


@router.get("/console/events")
async def console_events(request: Request, state: State, session: PageSession) -> StreamingResponse:
    require(session.user, "session.start")
    return StreamingResponse(
        _changes(state, session.user),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _changes(state: AppState, user: User) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    with state.hub.subscribe(therapist_topic(user.practice, user.id)) as signal:
        while True:
            woken = False
            with suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), HEARTBEAT_SECONDS)
                woken = True
            signal.clear()
            yield b"event: changed\ndata: {}\n\n" if woken else b": heartbeat\n\n"
