"""The room display: a tablet in the room (or a telehealth window) opened with the room's
token. The first paint is rendered here; the page then follows the display's Server-Sent
Events (`/api/v1/rooms/{room}/display/events`). It shows no name and nothing about the client:
only the state, the therapist's words for the client, times, the practice's help text and the
session's concern link (as text and a QR code). The JSON is the API's (`display_json`)."""

import io
from urllib.parse import quote

import segno
from fastapi import HTTPException, Request, Response

from stepout.domain.accounts import Room
from stepout.web.api.display import display_json
from stepout.web.audit import identify_room, record_read
from stepout.web.pages.routing import error_page, page_router
from stepout.web.pages.templating import render
from stepout.web.security import RoomViewer, State, bearer_token, enter_practice, find_room
from stepout.web.state import AppState

router = page_router()

BAD_LINK = (
    "This display link is not valid for this room. "
    "Ask the practice for the room's current display address."
)


def zone_of_room(state: AppState, room: Room) -> str:
    with state.db.uow(read_only=True) as uow:
        practice = uow.records.practice(room.practice)
    return practice.timezone if practice is not None else "UTC"


@router.get("/display/{room}")
def display_page(room: str, request: Request, state: State) -> Response:
    try:
        viewer = find_room(room, request, state)
    except HTTPException as e:
        return error_page(request, e.status_code, BAD_LINK)
    enter_practice(viewer.practice)
    identify_room(viewer)
    token = bearer_token(request) or request.query_params.get("token", "")
    query = f"token={quote(token, safe='')}"
    data = display_json(state, viewer, str(request.base_url))
    record_read(state, "display.read", viewer.id)
    context = {
        "room": viewer,
        "data": data,
        "zone": zone_of_room(state, viewer),
        "events_url": f"/api/v1/rooms/{quote(room, safe='')}/display/events?{query}",
        "qr_url": f"/display/{quote(room, safe='')}/qr.svg?{query}",
        "now_ms": state.now() // 1000,
    }
    return render(request, "display.html", context, embeddable=True)


def qr_svg(url: str | None) -> bytes:
    if url is None:
        return b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'
    out = io.BytesIO()
    segno.make(url, error="m").save(
        out,
        kind="svg",
        scale=6,
        border=2,
        dark="#16323f",
        light="#ffffff",
        xmldecl=False,
        title="Scan to tell the practice about a concern",
    )
    return out.getvalue()


@router.get("/display/{room}/qr.svg")
def concern_qr(room: str, request: Request, state: State, viewer: RoomViewer) -> Response:
    """The current session's concern link as a QR code (an empty image when there is none)."""
    url = display_json(state, viewer, str(request.base_url))["concern_url"]
    return Response(
        qr_svg(url),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
