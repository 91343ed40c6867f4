"""What the API tests share: calls as a named user, a session started, an exit declared, and
JSON Lines records to import. No tests here. Every id, name and text is synthetic."""

from typing import Any

import httpx
import orjson
import pytest

from tests.web.conftest import Web

API = "/api/v1"
# For a test on `web_any` or `web_clocked` whose behaviour does not depend on the engine.
SQLITE_ONLY = pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
EXIT: dict[str, Any] = {
    "reason": "technical",
    "explanation": "The video dropped; I will fetch the other laptop and be right back.",
    "client_informed": True,
    "safeguards": ["records_secured", "screen_locked", "door_closed"],
    "expected_minutes": 5,
}


def auth(web: Web, username: str) -> dict[str, str]:
    """The Bearer header of `username` (a-* in practice pa, b-* in practice pb)."""
    practice = web.a if username.startswith("a-") else web.b
    return practice.auth(username)


def call(
    web: Web, method: str, path: str, username: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if username is not None:
        headers.update(auth(web, username))
    return web.client.request(method, API + path, headers=headers, **kwargs)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def start(
    web: Web, username: str = "a-ther", room: str = "room-1", codes: tuple[str, ...] = ()
) -> dict[str, Any]:
    body = {"client": "c-0001", "room": room, "billed_codes": list(codes)}
    return ok(call(web, "POST", "/sessions", username, json=body), 201)


def step_out(web: Web, session: str, username: str = "a-ther", **fields: Any) -> dict[str, Any]:
    body = {**EXIT, **fields}
    return ok(call(web, "POST", f"/sessions/{session}/exits", username, json=body), 201)


def come_back(web: Web, exit_id: str, username: str = "a-ther", checked_in: bool = True) -> Any:
    return ok(
        call(web, "POST", f"/exits/{exit_id}/return", username, json={"checked_in": checked_in})
    )


def end(web: Web, session: str, username: str = "a-ther") -> dict[str, Any]:
    return ok(call(web, "POST", f"/sessions/{session}/end", username))


def jsonl(*records: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def session_line(
    sid: str,
    practice: str = "pa",
    therapist: str = "a-ther",
    start: str = "2026-02-02T10:00:00+00:00",
    end: str = "2026-02-02T10:55:00+00:00",
    **more: Any,
) -> dict[str, Any]:
    return {
        "kind": "session",
        "id": sid,
        "practice": practice,
        "therapist": therapist,
        "client": "c-0042",
        "room": "room-1",
        "modality": "in_person",
        "start": start,
        "end": end,
        **more,
    }


def exit_line(
    xid: str,
    session: str,
    left_at: str = "2026-02-02T10:20:00+00:00",
    returned_at: str | None = "2026-02-02T10:23:00+00:00",
    **more: Any,
) -> dict[str, Any]:
    return {
        "kind": "exit",
        "id": xid,
        "session": session,
        "source": "declared",
        "reason": "technical",
        "left_at": left_at,
        "returned_at": returned_at,
        "client_informed": "before_leaving",
        "explanation": "Fetching a charger.",
        "safeguards": ["records_secured", "screen_locked", "door_closed"],
        "checked_in": True,
        **more,
    }


def import_records(web: Web, body: bytes, username: str = "a-admin") -> httpx.Response:
    headers = {"Content-Type": "application/x-ndjson"}
    return call(web, "POST", "/records", username, content=body, headers=headers)


def fields(response: httpx.Response) -> list[str]:
    """The fields a 422 names."""
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]
