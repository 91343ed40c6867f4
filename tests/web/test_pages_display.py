"""The room display page: opened by its room's token only; idle, in session and away; no
names; the concern link as text and as a QR code."""

import json
import re

from tests.web.conftest import Web
from tests.web.pages_support import come_back, login, start_session, step_out


def page_data(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="display-data">(.*?)</script>', html)
    assert found is not None
    body: dict[str, object] = json.loads(found.group(1))
    return body


def test_the_display_needs_its_own_rooms_token(web: Web) -> None:
    c = web.client
    ok = c.get("/display/room-1", params={"token": web.a.room_tokens["room-1"]})
    assert ok.status_code == 200
    other_room = c.get("/display/room-1", params={"token": web.a.room_tokens["room-2"]})
    assert other_room.status_code == 403
    assert "not valid for this room" in other_room.text
    assert c.get("/display/room-1", params={"token": "sr_forged"}).status_code == 401
    assert c.get("/display/room-1").status_code == 401
    qr = c.get("/display/room-1/qr.svg", params={"token": web.a.room_tokens["room-2"]})
    assert qr.status_code == 403


def test_the_display_is_idle_then_in_session_then_away_without_names(web: Web) -> None:
    c = web.client
    token = web.a.room_tokens["room-1"]
    idle = c.get("/display/room-1", params={"token": token})
    assert page_data(idle.text)["state"] == "idle"
    assert "Welcome" in idle.text
    assert f"/api/v1/rooms/room-1/display/events?token={token}" in idle.text

    csrf = login(c, "a-ther")
    sid = start_session(c, csrf, code="c-secret-77")
    in_session = c.get("/display/room-1", params={"token": token})
    data = page_data(in_session.text)
    assert data["state"] == "in_session"
    assert isinstance(data["concern_url"], str)
    assert data["concern_url"].startswith(f"http://127.0.0.1/c/{sid}/")

    exit_id = step_out(c, csrf, sid, explanation="I will be right back, please wait here.")
    away = c.get("/display/room-1", params={"token": token})
    assert page_data(away.text)["state"] == "away"
    assert "Your therapist has stepped out briefly" in away.text
    assert "I will be right back, please wait here." in away.text
    assert "If you feel unwell or unsafe" in away.text
    assert "In an emergency, call 911." in away.text
    for private in ("c-secret-77", "a-ther", sid, exit_id):
        assert private not in away.text.replace(f"/c/{sid}/", "")
    assert "frame-ancestors" not in away.headers["content-security-policy"]

    come_back(c, csrf, exit_id)
    assert page_data(c.get("/display/room-1", params={"token": token}).text)["state"] == (
        "in_session"
    )


def test_the_qr_code_carries_the_concern_link_while_a_session_is_on(web: Web) -> None:
    c = web.client
    token = web.a.room_tokens["room-1"]
    empty = c.get("/display/room-1/qr.svg", params={"token": token})
    assert empty.status_code == 200
    assert "<path" not in empty.text
    start_session(c, login(c, "a-ther"))
    qr = c.get("/display/room-1/qr.svg", params={"token": token})
    assert qr.headers["content-type"].startswith("image/svg+xml")
    assert "<path" in qr.text
