"""Sessions through the API: the issue's contract as written, minutes on a controlled clock,
the day's list, and every refusal."""

from stepout.domain.instants import parse_instant
from tests.web.conftest import FakeClock, Web
from tests.web.test_api_support import (
    EXIT,
    SQLITE_ONLY,
    call,
    come_back,
    end,
    fields,
    ok,
    start,
    step_out,
)


@SQLITE_ONLY
def test_contract_start_a_session_as_the_tokens_therapist(web_clocked: Web) -> None:
    r = call(
        web_clocked,
        "POST",
        "/sessions",
        "a-ther",
        json={"client": "c-0001", "room": "room-1", "billed_codes": ["90834"]},
    )
    body = ok(r, 201)
    assert body["id"].startswith("s_")
    assert r.headers["location"] == f"/api/v1/sessions/{body['id']}"
    assert body["therapist"] == "a-ther"
    assert body["practice"] == "pa"
    assert body["start"] == "2026-03-02T15:00:00+00:00"  # now, by the app's clock
    assert (body["end"], body["in_progress"], body["billed_codes"]) == (None, True, ["90834"])
    assert (body["gross_minutes"], body["net_minutes"], body["exits"]) == (0, 0, [])


def test_contract_billed_codes_are_optional(web: Web) -> None:
    body = ok(
        call(web, "POST", "/sessions", "a-ther", json={"client": "c-1", "room": "room-2"}), 201
    )
    assert (body["billed_codes"], body["modality"]) == ([], "in_person")


def test_contract_declare_an_exit_with_every_field(web_clocked: Web, clock: FakeClock) -> None:
    sid = start(web_clocked)["id"]
    clock.advance(minutes=12)
    r = call(
        web_clocked,
        "POST",
        f"/sessions/{sid}/exits",
        "a-ther",
        json={
            "reason": "health_emergency",
            "reason_note": "Synthetic note.",
            "explanation": "I am getting help; someone will stay with you.",
            "client_informed": True,
            "safeguards": ["records_secured", "door_closed"],
            "expected_minutes": 10,
            "client_attended_by": "Reception staff",
            "ems": "called",
        },
    )
    x = ok(r, 201)
    assert r.headers["location"] == f"/api/v1/exits/{x['id']}"
    assert x["id"].startswith("e_")
    assert x["session"] == sid
    assert (x["source"], x["reason"], x["reason_note"]) == (
        "declared",
        "health_emergency",
        "Synthetic note.",
    )
    assert x["left_at"] == "2026-03-02T15:12:00+00:00"
    assert (x["client_informed"], x["expected_minutes"]) == ("before_leaving", 10)
    assert x["safeguards"] == ["door_closed", "records_secured"]
    assert (x["client_attended_by"], x["ems"]) == ("Reception staff", "called")
    assert (x["open"], x["returned_at"], x["signed_at"]) == (True, None, None)


def test_an_exit_the_client_was_not_told_of_is_recorded_so(web: Web) -> None:
    sid = start(web)["id"]
    x = step_out(web, sid, client_informed=False, safeguards=[], expected_minutes=None)
    assert (x["client_informed"], x["safeguards"], x["expected_minutes"]) == (
        "not_informed",
        [],
        None,
    )


def test_contract_read_a_session_with_exits_gross_and_net_minutes(
    web_clocked: Web, clock: FakeClock
) -> None:
    sid = start(web_clocked, codes=("90837",))["id"]
    clock.advance(minutes=10)
    xid = step_out(web_clocked, sid)["id"]
    clock.advance(minutes=6)
    come_back(web_clocked, xid)
    clock.advance(minutes=14)
    live = ok(call(web_clocked, "GET", f"/sessions/{sid}", "a-ther"))
    assert (live["in_progress"], live["gross_minutes"], live["net_minutes"]) == (True, 30, 24)
    assert "billing" not in live  # billed once the session has ended
    assert [x["id"] for x in live["exits"]] == [xid]
    assert live["exits"][0]["returned_at"] == "2026-03-02T15:16:00+00:00"
    clock.advance(minutes=25, seconds=40)
    ended = end(web_clocked, sid)
    assert ended["end"] == "2026-03-02T15:55:40+00:00"
    assert (ended["gross_minutes"], ended["net_minutes"]) == (55, 49)
    # 49 net minutes do not reach 90837 (53): billed above what the minutes support.
    assert ended["billing"] == {"status": "unsupported", "supported_codes": ["90834"]}
    clock.advance(minutes=30)
    later = ok(call(web_clocked, "GET", f"/sessions/{sid}", "a-ther"))
    assert (later["gross_minutes"], later["net_minutes"]) == (55, 49)  # fixed at the end


@SQLITE_ONLY
def test_an_exit_never_returned_from_lasts_to_the_sessions_end(
    web_clocked: Web, clock: FakeClock
) -> None:
    sid = start(web_clocked)["id"]
    clock.advance(minutes=20)
    step_out(web_clocked, sid)
    clock.advance(minutes=10)
    ended = end(web_clocked, sid)
    assert (ended["gross_minutes"], ended["net_minutes"]) == (30, 20)
    assert ended["exits"][0]["returned_at"] is None


def test_supervisors_read_concerns_with_the_session_and_therapists_do_not(web: Web) -> None:
    from stepout.domain.commands import RaiseConcern

    sid = start(web)["id"]
    end(web, sid)
    web.state.workflow.run(RaiseConcern(practice="pa", session=sid, text="Synthetic concern."))
    assert "concerns" not in ok(call(web, "GET", f"/sessions/{sid}", "a-ther"))
    concerns = ok(call(web, "GET", f"/sessions/{sid}", "a-super"))["concerns"]
    assert [c["text"] for c in concerns] == ["Synthetic concern."]
    assert "concerns" not in ok(call(web, "GET", f"/sessions/{sid}", "a-bill"))


# -- The day's sessions


@SQLITE_ONLY
def test_a_therapist_lists_their_own_sessions_of_the_day(web_clocked: Web) -> None:
    mine = start(web_clocked, "a-ther", "room-1")["id"]
    theirs = start(web_clocked, "a-ther2", "room-2")["id"]
    listed = ok(call(web_clocked, "GET", "/sessions?date=2026-03-02", "a-ther"))
    assert [s["id"] for s in listed] == [mine]
    assert [s["id"] for s in ok(call(web_clocked, "GET", "/sessions", "a-ther2"))] == [theirs]


def test_other_roles_list_the_practices_sessions_ended_and_in_progress(
    web_clocked: Web, clock: FakeClock
) -> None:
    first = start(web_clocked, "a-ther", "room-1")["id"]
    clock.advance(minutes=1)
    second = start(web_clocked, "a-ther2", "room-2")["id"]
    clock.advance(minutes=30)
    end(web_clocked, first)
    start(web_clocked, "b-ther", "room-1")  # another practice
    for who in ("a-super", "a-admin", "a-bill"):
        listed = ok(call(web_clocked, "GET", "/sessions", who))
        assert [s["id"] for s in listed] == [first, second], who
        assert [s["in_progress"] for s in listed] == [False, True]
    assert ok(call(web_clocked, "GET", "/sessions?date=2026-03-01", "a-super")) == []
    assert len(ok(call(web_clocked, "GET", "/sessions", "b-super"))) == 1


@SQLITE_ONLY
def test_the_days_list_defaults_to_today_on_the_apps_clock(
    web_clocked: Web, clock: FakeClock
) -> None:
    sid = start(web_clocked)["id"]
    assert [s["id"] for s in ok(call(web_clocked, "GET", "/sessions", "a-ther"))] == [sid]
    clock.advance(minutes=24 * 60)
    assert ok(call(web_clocked, "GET", "/sessions", "a-ther")) == []
    assert len(ok(call(web_clocked, "GET", "/sessions?date=2026-03-02", "a-ther"))) == 1


@SQLITE_ONLY
def test_the_day_is_the_practices_day_in_its_time_zone(web_clocked: Web, clock: FakeClock) -> None:
    accounts = web_clocked.state.accounts
    accounts.add_practice("pny", "Synthetic practice NY", timezone="America/New_York")
    accounts.add_user("ny-ther", "pny", "therapist", "synthetic-pass-0001")
    accounts.add_room("room-1", "pny", "Room 1")
    headers = {"Authorization": f"Bearer {accounts.create_api_token('ny-ther')[1]}"}
    clock.at = parse_instant("2026-03-02T03:30:00+00:00")  # 22:30 on 1 March in New York
    body = {"client": "c-1", "room": "room-1"}
    sid = ok(web_clocked.client.post("/api/v1/sessions", json=body, headers=headers), 201)["id"]
    today = web_clocked.client.get("/api/v1/sessions", headers=headers).json()
    assert [s["id"] for s in today] == [sid]
    march_1 = web_clocked.client.get("/api/v1/sessions?date=2026-03-01", headers=headers).json()
    assert [s["id"] for s in march_1] == [sid]
    assert web_clocked.client.get("/api/v1/sessions?date=2026-03-02", headers=headers).json() == []


def test_a_day_that_is_not_a_date_is_refused_with_the_field(web: Web) -> None:
    assert fields(call(web, "GET", "/sessions?date=02/03/2026", "a-ther")) == ["date"]


# -- Refusals


NOT_THERAPISTS = ["a-admin", "a-super", "a-bill"]


def test_only_a_therapist_starts_a_session(web: Web) -> None:
    for username in NOT_THERAPISTS:
        r = call(web, "POST", "/sessions", username, json={"client": "c-1", "room": "room-1"})
        assert r.status_code == 403, username
        assert "session.start" in r.json()["message"]


def test_a_room_the_practice_does_not_have_is_not_found(web: Web) -> None:
    r = call(web, "POST", "/sessions", "a-ther", json={"client": "c-1", "room": "room-9"})
    assert r.status_code == 404


BAD_SESSIONS = [
    ({"room": "room-1"}, "client"),
    ({"client": "   ", "room": "room-1"}, "client"),
    ({"client": "c-1"}, "room"),
    ({"client": "c-1", "room": "room-1", "billed_codes": ["99999"]}, "billed_codes"),
    ({"client": "c-1", "room": "room-1", "billed_codes": "90834"}, "billed_codes"),
    ({"client": "c-1", "room": "room-1", "modality": "phone"}, "modality"),
    ({"client": "c-1", "room": "room-1", "therapist": "a-ther2"}, "therapist"),
]


def test_bad_session_input_names_the_field(web: Web) -> None:
    for body, field in BAD_SESSIONS:
        r = call(web, "POST", "/sessions", "a-ther", json=body)
        assert fields(r) == [field], body
        assert r.json()["errors"][0]["reason"]


BAD_EXITS = [
    ({"reason": "coffee"}, "reason"),
    ({"reason": None}, "reason"),
    ({"explanation": ""}, "explanation"),
    ({"client_informed": "yes please"}, "client_informed"),
    ({"safeguards": ["window_open"]}, "safeguards.0"),
    ({"expected_minutes": 0}, "expected_minutes"),
    ({"ems": "maybe"}, "ems"),
    ({"mood": "calm"}, "mood"),
    ({"reason": "other"}, "reason_note"),
    ({"reason": "other", "reason_note": "  "}, "reason_note"),
]


def test_bad_exit_input_names_the_field(web: Web) -> None:
    sid = start(web)["id"]
    for change, field in BAD_EXITS:
        r = call(web, "POST", f"/sessions/{sid}/exits", "a-ther", json={**EXIT, **change})
        assert fields(r) == [field], change
    assert ok(call(web, "GET", f"/sessions/{sid}", "a-ther"))["exits"] == []


def test_a_body_that_is_not_json_is_a_422_not_a_500(web: Web) -> None:
    r = call(
        web,
        "POST",
        "/sessions",
        "a-ther",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["error"] == "invalid-request"


def test_stepping_out_of_an_ended_session_is_a_conflict(web: Web) -> None:
    sid = start(web)["id"]
    end(web, sid)
    r = call(
        web,
        "POST",
        f"/sessions/{sid}/exits",
        "a-ther",
        json={"reason": "technical", "explanation": "Back soon.", "client_informed": True},
    )
    assert r.status_code == 409
    assert r.json() == {
        "error": "session-not-in-progress",
        "message": "This session is not in progress.",
    }


def test_stepping_out_twice_without_returning_is_a_conflict(web: Web) -> None:
    sid = start(web)["id"]
    step_out(web, sid)
    r = call(
        web,
        "POST",
        f"/sessions/{sid}/exits",
        "a-ther",
        json={"reason": "technical", "explanation": "Again.", "client_informed": True},
    )
    assert (r.status_code, r.json()["error"]) == (409, "therapist-already-out")


def test_ending_a_session_twice_is_a_conflict(web: Web) -> None:
    sid = start(web)["id"]
    end(web, sid)
    r = call(web, "POST", f"/sessions/{sid}/end", "a-ther")
    assert (r.status_code, r.json()["error"]) == (409, "session-already-ended")


def test_another_practices_session_is_not_found(web_any: Web) -> None:
    sid = start(web_any, "b-ther")["id"]
    for username in ("a-ther", "a-super", "a-admin", "a-bill"):
        assert call(web_any, "GET", f"/sessions/{sid}", username).status_code == 404
    assert call(web_any, "POST", f"/sessions/{sid}/end", "a-ther").status_code == 404
    exit_body = {"reason": "technical", "explanation": "x", "client_informed": True}
    r = call(web_any, "POST", f"/sessions/{sid}/exits", "a-ther", json=exit_body)
    assert r.status_code == 404
    assert ok(call(web_any, "GET", f"/sessions/{sid}", "b-ther"))["in_progress"] is True


def test_another_therapists_session_is_not_found_but_a_supervisor_reads_it(web: Web) -> None:
    sid = start(web, "a-ther")["id"]
    assert call(web, "GET", f"/sessions/{sid}", "a-ther2").status_code == 404
    assert call(web, "POST", f"/sessions/{sid}/end", "a-ther2").status_code == 404
    exit_body = {"reason": "technical", "explanation": "x", "client_informed": True}
    assert call(web, "POST", f"/sessions/{sid}/exits", "a-ther2", json=exit_body).status_code == 404
    assert ok(call(web, "GET", f"/sessions/{sid}", "a-super"))["id"] == sid
    assert ok(call(web, "GET", f"/sessions/{sid}", "a-ther"))["in_progress"] is True  # unchanged


def test_an_unknown_session_is_not_found(web: Web) -> None:
    r = call(web, "GET", "/sessions/s_nope", "a-ther")
    assert r.status_code == 404
    assert "s_nope" not in r.text
