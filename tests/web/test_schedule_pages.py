"""Appointments on the therapist's console and the API: today's appointments of the signed-in
therapist are listed with a Start button; starting one makes the session under the
appointment's id with its plan; another therapist's appointment is not found. Every id here is
synthetic."""

from stepout.adapters.schedule.csvfile import read_csv
from stepout.cli.schedule import AccountsDirectory
from stepout.services.schedule import import_schedule
from tests.web.conftest import FakeClock, Web
from tests.web.pages_support import login

HEADER = "id,therapist,client,room,modality,start,end,billed_codes,status"
# The fake clock reads 2026-03-02T15:00Z; the practice's zone is UTC.
ROWS = (
    "ap-1,a-ther,c-0101,room-2,telehealth,2026-03-02T15:00:00Z,2026-03-02T15:55:00Z,90837,",
    "ap-2,a-ther,c-0102,room-1,in_person,2026-03-02T17:00:00Z,2026-03-02T17:50:00Z,,cancelled",
    "ap-3,a-ther2,c-0103,room-1,in_person,2026-03-02T16:00:00Z,2026-03-02T16:50:00Z,,",
    "ap-4,a-ther,c-0104,room-1,in_person,2026-03-03T09:00:00Z,2026-03-03T09:50:00Z,,",
)


def schedule(web: Web, *rows: str) -> None:
    data = ("\n".join((HEADER, *rows)) + "\n").encode()
    with web.state.db.uow() as uow:
        import_schedule(
            uow,
            list(read_csv(data, "pa")),
            practice="pa",
            directory=AccountsDirectory(uow.accounts),
        )


def test_the_console_lists_todays_appointments_and_starts_one(
    web_clocked: Web, clock: FakeClock
) -> None:
    web = web_clocked
    schedule(web, ROWS[0], ROWS[1].replace("cancelled", ""))
    schedule(web, *ROWS)  # ap-2 is cancelled
    c = web.client
    csrf = login(c, "a-ther")
    page = c.get("/console").text
    assert "Appointments today" in page
    assert 'name="appointment" value="ap-1"' in page
    assert "c-0102" in page
    assert 'value="ap-2"' not in page
    assert "c-0103" not in page  # another therapist's
    assert "c-0104" not in page  # tomorrow's
    clock.advance(minutes=2)
    r = c.post(
        "/console/sessions", data={"appointment": "ap-1", "csrf": csrf}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/sessions/ap-1"
    session_page = c.get("/console/sessions/ap-1").text
    assert "Session with c-0101" in session_page
    page = c.get("/console").text
    assert 'name="appointment" value="ap-1"' not in page
    assert 'href="/console/sessions/ap-1"' in page
    again = c.post("/console/sessions", data={"appointment": "ap-1", "csrf": csrf})
    assert again.status_code == 409
    assert "This appointment has started." in again.text


def test_another_therapists_appointment_is_not_found(web_clocked: Web) -> None:
    web = web_clocked
    schedule(web, *ROWS)
    c = web.client
    csrf = login(c, "a-ther")
    r = c.post("/console/sessions", data={"appointment": "ap-3", "csrf": csrf})
    assert r.status_code == 404
    assert "No such appointment in this practice." in r.text
    page = c.get("/console/sessions/ap-3")
    assert page.status_code == 404


def test_the_api_starts_a_session_from_an_appointment(web_clocked: Web) -> None:
    web = web_clocked
    schedule(web, *ROWS)
    headers = web.a.auth("a-ther")
    r = web.client.post("/api/v1/sessions", json={"appointment": "ap-1"}, headers=headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["id"], body["client"], body["room"], body["modality"]) == (
        "ap-1", "c-0101", "room-2", "telehealth"
    )  # fmt: skip
    assert body["billed_codes"] == ["90837"]
    assert r.headers["Location"] == "/api/v1/sessions/ap-1"
    both = web.client.post(
        "/api/v1/sessions", json={"appointment": "ap-4", "room": "room-1"}, headers=headers
    )
    assert both.status_code == 422
    assert [e["field"] for e in both.json()["errors"]] == ["room"]
    other = web.client.post(
        "/api/v1/sessions", json={"appointment": "ap-1"}, headers=web.b.auth("b-ther")
    )
    assert other.status_code == 404
