"""`POST /api/v1/presence` and the app's presence services: a video platform's report of the
therapist leaving the call becomes a sensor exit once the away timeout passes, and the room's
display shows it as for a declared exit; badges through the app's services do the same. Only an
integration's token may report. Every id and name is synthetic."""

import time
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stepout.adapters.db import tenancy
from stepout.adapters.db.tables import AuditRow
from stepout.domain.instants import MICROS_PER_SECOND, format_instant
from stepout.domain.presence import BadgeSeen, SensorsConfig
from stepout.services.presence import PresenceService, PresenceServices
from stepout.web.api.presence import notify_on_change
from tests.web.conftest import FakeClock, Web
from tests.web.test_api_support import API, SQLITE_ONLY, auth, call, end, ok, start

AWAY_S = 60  # the settings' default away timeout


def integration(web: Web, practice: str = "pa") -> dict[str, str]:
    """The Bearer header of the practice's video platform (made on first use)."""
    username = f"{practice}-video"
    made = web.practices[practice]
    if username not in made.tokens:
        web.state.accounts.add_user(username, practice, "integration", None)
        made.tokens[username] = web.state.accounts.create_api_token(username)[1]
    return made.auth(username)


def report(web: Web, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    headers = integration(web) if headers is None else headers
    return web.client.post(f"{API}/presence", json=body, headers=headers)


def telehealth(web: Web, room: str = "room-1") -> str:
    body = {"client": "c-0001", "room": room, "modality": "telehealth"}
    created: dict[str, Any] = ok(call(web, "POST", "/sessions", "a-ther", json=body), 201)
    return str(created["id"])


def services(web: Web) -> PresenceServices:
    found = web.state.presence
    assert found is not None
    return found


def display(web: Web, room: str = "room-1") -> dict[str, Any]:
    token = web.a.room_tokens[room]
    r = web.client.get(f"{API}/rooms/{room}/display", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    shown: dict[str, Any] = r.json()
    return shown


def exits(web: Web, session: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok(call(web, "GET", f"/sessions/{session}", "a-ther"))["exits"]
    return found


def test_leaving_the_call_is_a_sensor_exit_once_the_timeout_passes(
    web_clocked: Web, clock: FakeClock
) -> None:
    web = web_clocked
    sid = telehealth(web)
    clock.advance(minutes=10)
    left = format_instant(clock())
    answer = ok(
        report(web, {"session": sid, "participant": "therapist", "event": "left", "at": left}), 202
    )
    assert answer == {
        "session": sid,
        "participant": "therapist",
        "event": "left",
        "at": left,
        "used": True,
    }
    clock.advance(seconds=AWAY_S)
    services(web).tick()
    assert display(web)["state"] == "in_session"  # exactly the timeout: not yet
    clock.advance(seconds=2)
    services(web).tick()
    shown = display(web)
    assert (shown["state"], shown["left_at"], shown["explanation"]) == ("away", left, None)
    (x,) = exits(web, sid)
    assert (x["source"], x["reason"], x["left_at"], x["returned_at"]) == (
        "sensor",
        None,
        left,
        None,
    )

    clock.advance(minutes=3)
    back = format_instant(clock())
    ok(
        report(web, {"session": sid, "participant": "therapist", "event": "joined", "at": back}),
        202,
    )
    clock.advance(seconds=1)
    services(web).tick()
    assert display(web)["state"] == "in_session"
    (x,) = exits(web, sid)
    assert x["returned_at"] == back
    stats = services(web).of("pa").stats()
    assert (stats["exits_begun"], stats["exits_ended"]) == (1, 1)


@SQLITE_ONLY
def test_rejoining_within_the_timeout_and_client_events_make_no_exit(
    web_clocked: Web, clock: FakeClock
) -> None:
    web = web_clocked
    sid = telehealth(web)
    for participant, event in (("client", "left"), ("therapist", "left"), ("therapist", "joined")):
        clock.advance(seconds=10)
        at = format_instant(clock())
        body = {"session": sid, "participant": participant, "event": event, "at": at}
        assert ok(report(web, body), 202)["used"] is (participant == "therapist")
    clock.advance(minutes=30)
    services(web).tick()
    assert exits(web, sid) == []
    assert services(web).of("pa").stats()["ignored"] == 1


def test_a_badge_through_the_apps_service_shows_away_on_the_display(
    web_clocked: Web, clock: FakeClock
) -> None:
    web = web_clocked
    service = services(web).of("pa")
    sid = start(web, room="room-2")["id"]
    clock.advance(seconds=5)
    service.observe(BadgeSeen("a-ther", "room-2", 1.2, clock()))
    seen = format_instant(clock())
    clock.advance(seconds=AWAY_S + 2)
    services(web).tick()
    shown = display(web, "room-2")
    assert (shown["state"], shown["left_at"]) == ("away", seen)
    (x,) = exits(web, sid)
    assert x["source"] == "sensor"
    # The therapist back: the badge, then the tap (a no-op, but for the check-in).
    clock.advance(minutes=2)
    service.observe(BadgeSeen("a-ther", "room-2", 0.8, clock()))
    clock.advance(seconds=1)
    services(web).tick()
    assert display(web, "room-2")["state"] == "in_session"
    back = ok(call(web, "POST", f"/exits/{x['id']}/return", "a-ther", json={"checked_in": True}))
    assert back["checked_in"] is True


@SQLITE_ONLY
def test_who_may_report(web_clocked: Web) -> None:
    web = web_clocked
    sid = telehealth(web)
    body = {
        "session": sid,
        "participant": "therapist",
        "event": "left",
        "at": "2026-03-02T15:00:00Z",
    }
    assert report(web, body, headers={}).status_code == 401
    assert report(web, body, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    room = {"Authorization": f"Bearer {web.a.room_tokens['room-1']}"}
    assert report(web, body, headers=room).status_code == 401
    for staff in ("a-admin", "a-super", "a-ther", "a-bill"):
        r = report(web, body, headers=auth(web, staff))
        assert r.status_code == 403, staff
    # The integration may report, and nothing else.
    assert report(web, body).status_code == 202
    for method, path in (("GET", "/sessions"), ("GET", f"/sessions/{sid}"), ("GET", "/findings")):
        r = web.client.request(method, API + path, headers=integration(web))
        assert r.status_code == 403, path
    with tenancy.scope(tenancy.ALL), web.state.db.engine.connect() as conn:
        rows = conn.execute(
            select(AuditRow.actor, AuditRow.target, AuditRow.channel).where(
                AuditRow.action == "presence.report"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("pa-video", sid, "api")]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"participant": "supervisor"}, 422, "participant"),
        ({"event": "paused"}, 422, "event"),
        ({"at": "2026-03-02T15:00:00"}, 422, "at"),  # no offset
        ({"at": "yesterday"}, 422, "at"),
        ({"at": "2026-03-02T16:00:00+00:00"}, 422, None),  # an hour in the future
        ({"session": "s-nowhere"}, 404, None),
        ({"extra": 1}, 422, "extra"),
    ],
)
def test_bad_reports_are_refused(
    web_clocked: Web, change: dict[str, Any], status: int, field: str | None
) -> None:
    sid = telehealth(web_clocked)
    body = {"session": sid, "participant": "therapist", "event": "left", "at": "2026-03-02T15:00Z"}
    r = report(web_clocked, {**body, **change})
    assert r.status_code == status, r.text
    if field is not None:
        assert [e["field"] for e in r.json()["errors"]] == [field]


@SQLITE_ONLY
def test_only_a_telehealth_session_in_progress_of_the_practice(web_clocked: Web) -> None:
    web = web_clocked
    at = "2026-03-02T15:00:00+00:00"
    in_person = start(web)["id"]
    r = report(web, {"session": in_person, "participant": "therapist", "event": "left", "at": at})
    assert r.status_code == 409
    ended = telehealth(web, room="room-2")
    web.state.clock.advance(minutes=1)  # type: ignore[attr-defined]
    end(web, ended)
    r = report(web, {"session": ended, "participant": "therapist", "event": "left", "at": at})
    assert r.status_code == 409
    theirs = ok(
        call(web, "POST", "/sessions", "b-ther", json={"client": "c-9", "room": "room-1",
                                                        "modality": "telehealth"}),
        201,
    )["id"]  # fmt: skip
    r = report(web, {"session": theirs, "participant": "therapist", "event": "left", "at": at})
    assert r.status_code == 404


@SQLITE_ONLY
def test_the_apps_thread_ticks_the_services(web_any: Web) -> None:
    """Nobody ticks by hand here: the app's own thread (started with the app) notices the
    timeout, within about a second of it."""
    web = web_any
    config = SensorsConfig("pa", away_timeout=1 * MICROS_PER_SECOND)
    quick = PresenceService(
        config,
        partial(web.state.db.uow, scope="pa"),
        clock=web.state.clock,
        on_change=notify_on_change(web.state.notifier),
    )
    services(web).add(quick)
    assert services(web).of("pa") is quick
    sid = start(web)["id"]
    quick.observe(BadgeSeen("a-ther", "room-1", 1.0, web.state.now()))
    deadline = time.monotonic() + 10
    while display(web)["state"] != "away":
        assert time.monotonic() < deadline, quick.stats()
        time.sleep(0.1)
    (x,) = exits(web, sid)
    assert x["source"] == "sensor"
