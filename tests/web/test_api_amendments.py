"""Amendments (`POST /{sessions,exits,concerns}/{id}/amend`) and a client's concerns for
supervisors (`GET /concerns/{id}`, `POST /concerns/{id}/acknowledge`)."""

from stepout.domain.commands import RaiseConcern
from tests.web.conftest import FakeClock, Web
from tests.web.test_api_support import (
    SQLITE_ONLY,
    call,
    come_back,
    end,
    fields,
    ok,
    start,
    step_out,
)

NOTE = "Corrected after review (synthetic)."


def _signed_exit(web: Web) -> tuple[str, str]:
    sid = start(web)["id"]
    xid = step_out(web, sid, safeguards=["door_closed"])["id"]
    come_back(web, xid, checked_in=False)
    ok(call(web, "POST", f"/exits/{xid}/sign", "a-ther"))
    return sid, xid


def _concern(web: Web, sid: str) -> str:
    outcome = web.state.workflow.run(
        RaiseConcern(practice="pa", session=sid, text="Synthetic concern.")
    )
    return outcome.record.id


def test_amend_a_signed_exit(web_any: Web) -> None:
    _, xid = _signed_exit(web_any)
    body = {
        "changes": {"checked_in": True, "safeguards": ["door_closed", "screen_locked"]},
        "note": NOTE,
    }
    x = ok(call(web_any, "POST", f"/exits/{xid}/amend", "a-ther", json=body))
    assert (x["checked_in"], x["safeguards"]) == (True, ["door_closed", "screen_locked"])
    assert ok(call(web_any, "GET", f"/exits/{xid}", "a-super"))["checked_in"] is True
    # The same values again change nothing, and are not an error.
    assert ok(call(web_any, "POST", f"/exits/{xid}/amend", "a-ther", json=body)) == x


def test_a_supervisor_amends_an_ended_session(web_clocked: Web, clock: FakeClock) -> None:
    sid = start(web_clocked, codes=("90837",))["id"]
    clock.advance(minutes=50)
    early = {"changes": {"billed_codes": ["90834"]}, "note": NOTE}
    r = call(web_clocked, "POST", f"/sessions/{sid}/amend", "a-super", json=early)
    assert (r.status_code, r.json()["error"]) == (409, "session-in-progress")
    end(web_clocked, sid)
    s = ok(call(web_clocked, "POST", f"/sessions/{sid}/amend", "a-super", json=early))
    assert s["billed_codes"] == ["90834"]
    assert s["billing"]["status"] == "supported"
    later = {"changes": {"end": "2026-03-02T15:55:00+00:00"}, "note": NOTE}
    s = ok(call(web_clocked, "POST", f"/sessions/{sid}/amend", "a-ther", json=later))
    assert (s["end"], s["gross_minutes"]) == ("2026-03-02T15:55:00+00:00", 55)


@SQLITE_ONLY
def test_an_amendment_must_keep_the_record_valid(web_clocked: Web, clock: FakeClock) -> None:
    sid = start(web_clocked)["id"]
    clock.advance(minutes=30)
    end(web_clocked, sid)
    body = {"changes": {"end": "2026-03-02T14:00:00+00:00"}, "note": NOTE}
    r = call(web_clocked, "POST", f"/sessions/{sid}/amend", "a-ther", json=body)
    assert (r.status_code, r.json()["error"]) == (422, "invalid-value")
    assert "end" in r.json()["message"]


BAD_AMENDMENTS = [
    ({"changes": {"mood": "calm"}, "note": NOTE}, "changes.mood"),
    ({"changes": {"session": "s_other"}, "note": NOTE}, "changes.session"),
    ({"changes": {"id": "e-2"}, "note": NOTE}, "changes.id"),
    ({"changes": {}, "note": NOTE}, "changes"),
    ({"changes": {"checked_in": True}}, "note"),
    ({"changes": {"checked_in": True}, "note": "  "}, "note"),
    ({"changes": {"checked_in": True}, "note": NOTE, "why": "x"}, "why"),
]


def test_bad_amendments_name_the_field(web: Web) -> None:
    _, xid = _signed_exit(web)
    for body, field in BAD_AMENDMENTS:
        r = call(web, "POST", f"/exits/{xid}/amend", "a-ther", json=body)
        assert fields(r) == [field], body


def test_who_may_amend_what(web: Web) -> None:
    sid, xid = _signed_exit(web)
    body = {"changes": {"checked_in": True}, "note": NOTE}
    for username in ("a-admin", "a-bill"):
        assert call(web, "POST", f"/exits/{xid}/amend", username, json=body).status_code == 403
    assert call(web, "POST", f"/exits/{xid}/amend", "a-ther2", json=body).status_code == 404
    assert call(web, "POST", f"/exits/{xid}/amend", "b-super", json=body).status_code == 404
    session_body = {"changes": {"billed_codes": []}, "note": NOTE}
    assert (
        call(web, "POST", f"/sessions/{sid}/amend", "a-ther2", json=session_body).status_code == 404
    )
    assert (
        call(web, "POST", f"/sessions/{sid}/amend", "b-ther", json=session_body).status_code == 404
    )
    assert ok(call(web, "GET", f"/exits/{xid}", "a-ther"))["checked_in"] is False  # untouched


def test_a_supervisor_reads_acknowledges_and_amends_a_concern(
    web_clocked: Web, clock: FakeClock
) -> None:
    sid = start(web_clocked)["id"]
    clock.advance(minutes=50)
    end(web_clocked, sid)
    kid = _concern(web_clocked, sid)
    c = ok(call(web_clocked, "GET", f"/concerns/{kid}", "a-super"))
    assert (c["session"], c["text"], c["acknowledged_at"]) == (sid, "Synthetic concern.", None)
    clock.advance(minutes=60)
    c = ok(call(web_clocked, "POST", f"/concerns/{kid}/acknowledge", "a-super"))
    assert c["acknowledged_at"] == "2026-03-02T16:50:00+00:00"
    again = call(web_clocked, "POST", f"/concerns/{kid}/acknowledge", "a-super")
    assert (again.status_code, again.json()["error"]) == (409, "concern-already-acknowledged")
    body = {"changes": {"acknowledged_at": "2026-03-02T16:45:00+00:00"}, "note": NOTE}
    c = ok(call(web_clocked, "POST", f"/concerns/{kid}/amend", "a-super", json=body))
    assert c["acknowledged_at"] == "2026-03-02T16:45:00+00:00"


def test_concerns_are_for_supervisors_and_their_practice(web: Web) -> None:
    sid = start(web)["id"]
    kid = _concern(web, sid)
    body = {"changes": {"text": "Changed."}, "note": NOTE}
    for username in ("a-ther", "a-bill"):
        assert call(web, "GET", f"/concerns/{kid}", username).status_code == 403
        assert call(web, "POST", f"/concerns/{kid}/acknowledge", username).status_code == 403
        assert call(web, "POST", f"/concerns/{kid}/amend", username, json=body).status_code == 403
    assert ok(call(web, "GET", f"/concerns/{kid}", "a-admin"))["id"] == kid
    assert call(web, "POST", f"/concerns/{kid}/acknowledge", "a-admin").status_code == 403
    for path in ("", "/acknowledge"):
        assert (
            call(web, "POST" if path else "GET", f"/concerns/{kid}{path}", "b-super").status_code
            == 404
        )
    assert call(web, "GET", "/concerns/k_nope", "a-super").status_code == 404
    assert ok(call(web, "GET", f"/concerns/{kid}", "a-super"))["acknowledged_at"] is None
