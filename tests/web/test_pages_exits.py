"""Stepping out through the pages: the prefilled form (nothing pre-ticked), the away screen,
"Back" with the check-in question, the health-emergency flow, what is missing, the addendum,
Sign and Amend."""

import re

from tests.web.conftest import Web
from tests.web.pages_support import browser, come_back, login, start_session, step_out


def display_state(web: Web, room: str = "room-1") -> dict[str, object]:
    token = web.a.room_tokens[room]
    r = web.client.get(f"/api/v1/rooms/{room}/display", params={"token": token})
    assert r.status_code == 200
    body: dict[str, object] = r.json()
    return body


def addendum_of(html: str) -> str:
    found = re.search(r'id="addendum-text">(.*?)</p>', html, re.S)
    assert found is not None
    return found.group(1)


def test_the_step_out_form_is_prefilled_and_nothing_is_pre_ticked(web: Web) -> None:
    c = web.client
    sid = start_session(c, login(c, "a-ther"))
    page = c.get(f"/console/sessions/{sid}/step-out", params={"reason": "technical"})
    assert page.status_code == 200
    assert "sort out a technical problem" in page.text
    for name in ("told", "safeguards"):
        boxes = re.findall(rf'<input type="checkbox" name="{name}"[^>]*>', page.text)
        assert boxes
        assert all("checked" not in box for box in boxes)
    assert c.get(f"/console/sessions/{sid}/step-out?reason=nap").status_code == 404


def test_stepping_out_and_back_through_the_forms(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    exit_id = step_out(c, csrf, sid, explanation="Back in five minutes, I promise.")
    away = c.get(f"/console/exits/{exit_id}")
    assert "You are out of the session" in away.text
    assert "Did you check in with the client?" in away.text
    assert 'data-left-at="' in away.text
    shown = display_state(web)
    assert shown["state"] == "away"
    assert shown["explanation"] == "Back in five minutes, I promise."

    come_back(c, csrf, exit_id, checked_in=True)
    assert display_state(web)["state"] == "in_session"
    after = c.get(f"/console/exits/{exit_id}")
    assert "Everything the protocol asks for is recorded." in after.text
    text = addendum_of(after.text)
    assert "because of a technical or facility problem" in text
    assert "Before leaving I told the client: \u201cBack in five minutes, I promise.\u201d" in text
    assert "records secured, screen locked and door closed" in text
    assert "On my return I checked in with the client." in text

    again = c.post(f"/console/exits/{exit_id}/return", data={"csrf": csrf, "checked_in": "yes"})
    assert again.status_code == 409
    assert "already recorded" in again.text


def test_stepping_out_twice_shows_the_refusal_on_the_form(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    step_out(c, csrf, sid)
    r = c.post(
        f"/console/sessions/{sid}/exits",
        data={"csrf": csrf, "reason": "technical", "explanation": "Again."},
    )
    assert r.status_code == 409
    assert "You are already out of a session" in r.text
    assert 'name="explanation"' in r.text  # the form, with what was typed


def test_other_needs_a_note(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    r = c.post(
        f"/console/sessions/{sid}/exits",
        data={"csrf": csrf, "reason": "other", "explanation": "Back soon."},
    )
    assert r.status_code == 422
    assert "Add a short note" in r.text
    assert display_state(web)["state"] == "in_session"


def test_missing_items_are_listed_and_fixed_one_tap_at_a_time(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    exit_id = step_out(c, csrf, sid, told="", safeguards=[], explanation="Back soon.")
    come_back(c, csrf, exit_id, checked_in=False)
    page = c.get(f"/console/exits/{exit_id}")
    assert "Not confirmed: door closed." in page.text
    assert "What the client was told is not recorded." in page.text
    assert "No check-in with the client" in page.text
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    door = {"safeguard": "door_closed"}
    r = c.post(f"/console/exits/{exit_id}/safeguards", data=door, headers=htmx)
    assert r.status_code == 200
    assert "Not confirmed: door closed." not in r.text
    c.post(f"/console/exits/{exit_id}/check-in", data={"csrf": csrf})
    r = c.post(
        f"/console/exits/{exit_id}/inform",
        data={"csrf": csrf, "when": "after_return", "explanation": "I had to fix the wifi."},
    )
    page = c.get(f"/console/exits/{exit_id}")
    assert "No check-in with the client" not in page.text
    text = addendum_of(page.text)
    assert "After coming back I told the client: \u201cI had to fix the wifi.\u201d" in text
    assert "For this reason the client should be told before you leave." in page.text


def test_the_health_emergency_flow(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    form = c.get(f"/console/sessions/{sid}/step-out", params={"reason": "health_emergency"})
    assert "Emergency services" in form.text
    assert "Who stays with the client?" in form.text
    exit_id = step_out(
        c,
        csrf,
        sid,
        reason="health_emergency",
        explanation="I'm going to get help right away.",
        expected_minutes="",
    )
    away = c.get(f"/console/exits/{exit_id}")
    assert "No decision about emergency services." in away.text
    assert "No one is recorded as staying with the client." in away.text
    r = c.post(
        f"/console/exits/{exit_id}/ems",
        data={"csrf": csrf, "ems": "called", "ems_note": "Ambulance on the way."},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = c.post(
        f"/console/exits/{exit_id}/attendant",
        data={"csrf": csrf, "attendant": "Reception"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    empty = c.post(f"/console/exits/{exit_id}/attendant", data={"csrf": csrf, "attendant": " "})
    assert empty.status_code == 422
    away = c.get(f"/console/exits/{exit_id}")
    assert "No decision about emergency services." not in away.text
    assert "<strong>Reception</strong>" in away.text
    come_back(c, csrf, exit_id)
    text = addendum_of(c.get(f"/console/exits/{exit_id}").text)
    assert "because of a health emergency" in text
    assert "Emergency services were called." in text
    assert "Reception stayed with the client while I was away." in text


def test_emergency_decisions_can_be_given_at_the_tap(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    exit_id = step_out(
        c, csrf, sid, reason="health_emergency", ems="not_needed", attendant="A colleague"
    )
    away = c.get(f"/console/exits/{exit_id}")
    assert "<strong>not needed</strong>" in away.text
    assert "<strong>A colleague</strong>" in away.text


def test_sign_then_amend(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    exit_id = step_out(c, csrf, sid)
    signing_too_early = c.post(f"/console/exits/{exit_id}/sign", data={"csrf": csrf})
    assert signing_too_early.status_code == 409
    come_back(c, csrf, exit_id)
    assert "Review and sign" in c.get("/console").text
    r = c.post(f"/console/exits/{exit_id}/sign", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    page = c.get(f"/console/exits/{exit_id}")
    assert "Signed" in page.text
    assert f"/console/exits/{exit_id}/sign" not in page.text
    assert "Review and sign" not in c.get("/console").text
    twice = c.post(f"/console/exits/{exit_id}/sign", data={"csrf": csrf})
    assert twice.status_code == 409

    fields = {
        "csrf": csrf,
        "reason": "technical",
        "reason_note": "",
        "explanation": "The projector failed; I went to get another.",
        "client_informed": "before_leaving",
        "client_attended_by": "",
        "ems": "",
        "returned": "",
    }
    no_note = c.post(f"/console/exits/{exit_id}/amend", data=fields)
    assert no_note.status_code == 422
    assert "Add a note" in no_note.text
    r = c.post(
        f"/console/exits/{exit_id}/amend",
        data={**fields, "note": "Recorded the words I actually used."},
        follow_redirects=False,
    )
    assert r.status_code == 303
    text = addendum_of(c.get(f"/console/exits/{exit_id}").text)
    assert "The projector failed; I went to get another." in text
    unchanged = c.post(f"/console/exits/{exit_id}/amend", data={**fields, "note": "Nothing new."})
    assert unchanged.status_code == 422
    assert "Nothing was changed." in unchanged.text


def test_another_therapist_cannot_touch_the_exit(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    exit_id = step_out(c, csrf, start_session(c, csrf))
    other = browser(web)
    other_csrf = login(other, "a-ther2")
    assert other.get(f"/console/exits/{exit_id}").status_code == 404
    r = other.post(
        f"/console/exits/{exit_id}/return", data={"csrf": other_csrf, "checked_in": "yes"}
    )
    assert r.status_code == 404
    assert display_state(web)["state"] == "away"


def test_a_supervisor_may_read_and_amend_but_not_sign(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    exit_id = step_out(c, csrf, sid)
    come_back(c, csrf, exit_id)
    sup = browser(web)
    sup_csrf = login(sup, "a-super")
    page = sup.get(f"/console/exits/{exit_id}")
    assert page.status_code == 200
    assert "Amend this exit" in page.text
    assert f"/console/exits/{exit_id}/sign" not in page.text
    r = sup.post(f"/console/exits/{exit_id}/sign", data={"csrf": sup_csrf})
    assert r.status_code == 403
