"""An exit after the tap, through the API: return, check in, inform, safeguards, EMS,
attendant, classify, sign, read; and every refusal."""

from tests.web.conftest import FakeClock, Web
from tests.web.test_api_support import (
    SQLITE_ONLY,
    call,
    come_back,
    end,
    exit_line,
    fields,
    import_records,
    jsonl,
    ok,
    session_line,
    start,
    step_out,
)


def _out(web: Web, username: str = "a-ther", **fields: object) -> str:
    """A session started and an exit declared by `username`: the exit's id."""
    sid = start(web, username)["id"]
    return step_out(web, sid, username, **fields)["id"]


@SQLITE_ONLY
def test_contract_return_with_the_check_in(web_clocked: Web, clock: FakeClock) -> None:
    xid = _out(web_clocked)
    clock.advance(minutes=4)
    r = call(web_clocked, "POST", f"/exits/{xid}/return", "a-ther", json={"checked_in": True})
    x = ok(r)
    assert (x["returned_at"], x["checked_in"], x["open"]) == (
        "2026-03-02T15:04:00+00:00",
        True,
        False,
    )


def test_return_without_the_check_in_then_check_in(web: Web) -> None:
    xid = _out(web)
    assert come_back(web, xid, checked_in=False)["checked_in"] is False
    assert ok(call(web, "POST", f"/exits/{xid}/check-in", "a-ther"))["checked_in"] is True
    assert ok(call(web, "POST", f"/exits/{xid}/check-in", "a-ther"))["checked_in"] is True


def test_returning_twice_is_a_conflict_with_the_reason(web_any: Web) -> None:
    xid = _out(web_any)
    come_back(web_any, xid)
    r = call(web_any, "POST", f"/exits/{xid}/return", "a-ther", json={"checked_in": True})
    assert r.status_code == 409
    assert r.json() == {
        "error": "exit-not-open",
        "message": "The return from this exit is already recorded.",
    }


def test_returning_after_the_session_ended_is_a_conflict(web: Web) -> None:
    sid = start(web)["id"]
    xid = step_out(web, sid)["id"]
    end(web, sid)
    r = call(web, "POST", f"/exits/{xid}/return", "a-ther", json={"checked_in": True})
    assert (r.status_code, r.json()["error"]) == (409, "session-not-in-progress")


BAD_RETURN_BODIES = [
    ({}, "checked_in"),
    ({"checked_in": "perhaps"}, "checked_in"),
    ({"checked_in": True, "x": 1}, "x"),
]


def test_a_bad_return_body_names_the_field(web: Web) -> None:
    xid = _out(web)
    for body, field in BAD_RETURN_BODIES:
        r = call(web, "POST", f"/exits/{xid}/return", "a-ther", json=body)
        assert fields(r) == [field], body


def test_check_in_before_the_return_is_a_conflict(web: Web) -> None:
    xid = _out(web)
    r = call(web, "POST", f"/exits/{xid}/check-in", "a-ther")
    assert (r.status_code, r.json()["error"]) == (409, "exit-not-returned")


@SQLITE_ONLY
def test_contract_sign_after_the_return(web_clocked: Web, clock: FakeClock) -> None:
    xid = _out(web_clocked)
    r = call(web_clocked, "POST", f"/exits/{xid}/sign", "a-ther")
    assert (r.status_code, r.json()["error"]) == (409, "exit-not-returned")
    clock.advance(minutes=3)
    come_back(web_clocked, xid)
    assert [x["id"] for x in ok(call(web_clocked, "GET", "/exits-to-sign", "a-ther"))] == [xid]
    clock.advance(minutes=40)
    signed = ok(call(web_clocked, "POST", f"/exits/{xid}/sign", "a-ther"))
    assert signed["signed_at"] == "2026-03-02T15:43:00+00:00"
    assert ok(call(web_clocked, "GET", "/exits-to-sign", "a-ther")) == []
    again = call(web_clocked, "POST", f"/exits/{xid}/sign", "a-ther")
    assert (again.status_code, again.json()["error"]) == (409, "exit-already-signed")


def test_a_signed_exit_refuses_live_changes(web: Web) -> None:
    xid = _out(web, safeguards=[])
    come_back(web, xid)
    ok(call(web, "POST", f"/exits/{xid}/sign", "a-ther"))
    r = call(web, "POST", f"/exits/{xid}/safeguards", "a-ther", json={"safeguard": "door_closed"})
    assert (r.status_code, r.json()["error"]) == (409, "exit-already-signed")


def test_an_exit_still_open_when_the_session_ended_can_be_signed(web: Web) -> None:
    sid = start(web)["id"]
    xid = step_out(web, sid)["id"]
    end(web, sid)
    assert ok(call(web, "POST", f"/exits/{xid}/sign", "a-ther"))["signed_at"] is not None


def test_inform_the_client_after_the_return(web: Web) -> None:
    xid = _out(web, client_informed=False, explanation="Stepping out.")
    body = {"explanation": "I had to take an urgent call about another client's safety."}
    early = call(web, "POST", f"/exits/{xid}/inform", "a-ther", json=body)
    assert (early.status_code, early.json()["error"]) == (409, "exit-not-returned")
    come_back(web, xid)
    x = ok(call(web, "POST", f"/exits/{xid}/inform", "a-ther", json=body))
    assert (x["client_informed"], x["explanation"]) == ("after_return", body["explanation"])
    other = {"explanation": "Something else."}
    r = call(web, "POST", f"/exits/{xid}/inform", "a-ther", json=other)
    assert (r.status_code, r.json()["error"]) == (409, "client-already-informed")
    assert body["explanation"] not in r.text  # health data is not echoed


def test_inform_before_leaving_while_out(web: Web) -> None:
    xid = _out(web, client_informed=False)
    body = {"client_informed": "before_leaving", "explanation": "I said I would be back."}
    x = ok(call(web, "POST", f"/exits/{xid}/inform", "a-ther", json=body))
    assert x["client_informed"] == "before_leaving"


BAD_INFORM_BODIES = [
    ({}, "explanation"),
    ({"explanation": "  "}, "explanation"),
    ({"explanation": "x", "client_informed": "not_informed"}, "client_informed"),
]


def test_a_bad_inform_body_names_the_field(web: Web) -> None:
    xid = _out(web)
    for body, field in BAD_INFORM_BODIES:
        r = call(web, "POST", f"/exits/{xid}/inform", "a-ther", json=body)
        assert fields(r) == [field], body


def test_confirm_each_safeguard_by_a_tap(web: Web) -> None:
    xid = _out(web, safeguards=[])
    for tapped in ("screen_locked", "door_closed", "door_closed"):
        body = {"safeguard": tapped}
        x = ok(call(web, "POST", f"/exits/{xid}/safeguards", "a-ther", json=body))
    assert x["safeguards"] == ["door_closed", "screen_locked"]
    bad = call(web, "POST", f"/exits/{xid}/safeguards", "a-ther", json={"safeguard": "all"})
    assert fields(bad) == ["safeguard"]


def test_a_health_emergency_records_ems_and_the_attendant(web: Web) -> None:
    xid = _out(web, reason="health_emergency", safeguards=[])
    ems = {"ems": "called", "note": "Ambulance requested (synthetic)."}
    assert ok(call(web, "POST", f"/exits/{xid}/ems", "a-ther", json=ems))["ems"] == "called"
    body = {"client_attended_by": "Front desk (synthetic)"}
    x = ok(call(web, "POST", f"/exits/{xid}/attendant", "a-ther", json=body))
    assert x["client_attended_by"] == "Front desk (synthetic)"
    x = ok(call(web, "POST", f"/exits/{xid}/ems", "a-ther", json={"ems": "not_needed"}))
    assert x["ems"] == "not_needed"


BAD_UPDATE_BODIES = [
    ("ems", {"ems": "maybe"}, "ems"),
    ("ems", {}, "ems"),
    ("ems", {"ems": "called", "urgency": "high"}, "urgency"),
    ("attendant", {"client_attended_by": ""}, "client_attended_by"),
    ("attendant", {}, "client_attended_by"),
    ("classify", {"reason": "boredom"}, "reason"),
    ("safeguards", {}, "safeguard"),
    ("safeguards", {"safeguard": "door_closed", "all": True}, "all"),
]


def test_bad_exit_update_bodies_name_the_field(web: Web) -> None:
    xid = _out(web)
    for path, body, field in BAD_UPDATE_BODIES:
        r = call(web, "POST", f"/exits/{xid}/{path}", "a-ther", json=body)
        assert fields(r) == [field], (path, body)


def test_classify_a_sensor_exit(web: Web) -> None:
    lines = jsonl(
        session_line("s-sensor-1"),
        exit_line("e-sensor-1", "s-sensor-1", source="sensor", reason=None, explanation=None),
    )
    ok(import_records(web, lines))
    body = {"reason": "client_safety", "reason_note": "Checked the waiting room."}
    x = ok(call(web, "POST", "/exits/e-sensor-1/classify", "a-ther", json=body))
    assert (x["source"], x["reason"], x["reason_note"]) == (
        "sensor",
        "client_safety",
        "Checked the waiting room.",
    )
    again = call(web, "POST", "/exits/e-sensor-1/classify", "a-ther", json={"reason": "other"})
    assert (again.status_code, again.json()["error"]) == (409, "exit-already-classified")


def test_a_declared_exit_is_not_classified(web: Web) -> None:
    xid = _out(web)
    r = call(web, "POST", f"/exits/{xid}/classify", "a-ther", json={"reason": "technical"})
    assert (r.status_code, r.json()["error"]) == (409, "not-a-sensor-exit")


def test_read_an_exit(web: Web) -> None:
    xid = _out(web)
    x = ok(call(web, "GET", f"/exits/{xid}", "a-ther"))
    assert (x["id"], x["reason"], x["open"]) == (xid, "technical", True)
    assert ok(call(web, "GET", f"/exits/{xid}", "a-super"))["id"] == xid


def test_every_update_of_a_health_emergency_is_stored(web_any: Web) -> None:
    xid = _out(web_any, reason="health_emergency", client_informed=False, safeguards=[])
    for path, body in [
        ("safeguards", {"safeguard": "records_secured"}),
        ("safeguards", {"safeguard": "screen_locked"}),
        ("ems", {"ems": "called", "note": "Synthetic note."}),
        ("attendant", {"client_attended_by": "Colleague (synthetic)"}),
        ("return", {"checked_in": False}),
        ("inform", {"explanation": "I needed to get help quickly."}),
        ("check-in", None),
        ("sign", None),
    ]:
        ok(call(web_any, "POST", f"/exits/{xid}/{path}", "a-ther", json=body))
    x = ok(call(web_any, "GET", f"/exits/{xid}", "a-ther"))
    assert x["safeguards"] == ["records_secured", "screen_locked"]
    assert (x["ems"], x["client_attended_by"]) == ("called", "Colleague (synthetic)")
    assert (x["client_informed"], x["explanation"]) == (
        "after_return",
        "I needed to get help quickly.",
    )
    assert (x["checked_in"], x["open"]) == (True, False)
    assert x["returned_at"] is not None
    assert x["signed_at"] is not None
    lines = jsonl(
        session_line("s-sensor-2"),
        exit_line("e-sensor-2", "s-sensor-2", source="sensor", reason=None),
    )
    ok(import_records(web_any, lines))
    ok(call(web_any, "POST", "/exits/e-sensor-2/classify", "a-ther", json={"reason": "other"}))
    assert ok(call(web_any, "GET", "/exits/e-sensor-2", "a-ther"))["reason"] == "other"


# -- Who may


UPDATES = [
    ("return", {"checked_in": True}),
    ("check-in", None),
    ("inform", {"explanation": "Back now."}),
    ("safeguards", {"safeguard": "door_closed"}),
    ("ems", {"ems": "not_needed"}),
    ("attendant", {"client_attended_by": "Someone"}),
    ("classify", {"reason": "technical"}),
    ("sign", None),
]


def test_another_therapists_exit_is_not_found(web: Web) -> None:
    xid = _out(web, "a-ther")
    for path, body in UPDATES:
        r = call(web, "POST", f"/exits/{xid}/{path}", "a-ther2", json=body)
        assert r.status_code == 404, path
    assert call(web, "GET", f"/exits/{xid}", "a-ther2").status_code == 404


def test_another_practices_exit_is_not_found(web_any: Web) -> None:
    xid = _out(web_any, "b-ther")
    for path, body in UPDATES:
        r = call(web_any, "POST", f"/exits/{xid}/{path}", "a-ther", json=body)
        assert r.status_code == 404, path
        assert r.json()["message"] == "No such exit in this practice."
    assert call(web_any, "GET", f"/exits/{xid}", "a-super").status_code == 404
    assert ok(call(web_any, "GET", f"/exits/{xid}", "b-ther"))["open"] is True  # untouched


def test_only_a_therapist_updates_an_exit(web: Web) -> None:
    xid = _out(web, "a-ther")
    for path, body in UPDATES:
        for username in ("a-admin", "a-super", "a-bill"):
            r = call(web, "POST", f"/exits/{xid}/{path}", username, json=body)
            assert r.status_code == 403, (path, username)
    assert ok(call(web, "GET", f"/exits/{xid}", "a-ther"))["open"] is True  # untouched


def test_only_a_therapist_has_exits_to_sign(web: Web) -> None:
    for username in ("a-admin", "a-super", "a-bill"):
        assert call(web, "GET", "/exits-to-sign", username).status_code == 403


def test_an_unknown_exit_is_not_found(web: Web) -> None:
    r = call(web, "POST", "/exits/e_nope/return", "a-ther", json={"checked_in": True})
    assert r.status_code == 404
