"""The therapist's console: today's sessions, starting and ending a session, and who may see
which session page."""

from tests.web.conftest import Web
from tests.web.pages_support import browser, csrf_of, login, start_session, step_out


def test_a_therapist_starts_a_session_from_the_console(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    page = c.get("/console")
    assert "Start a session" in page.text
    assert 'value="room-2"' in page.text
    sid = start_session(c, csrf, code="c-0042")
    session_page = c.get(f"/console/sessions/{sid}")
    assert session_page.status_code == 200
    assert "Session with c-0042" in session_page.text
    for reason in ("technical", "client_safety", "health_emergency", "other"):
        assert f"/console/sessions/{sid}/step-out?reason={reason}" in session_page.text
    assert "c-0042" in c.get("/console").text


def test_starting_a_session_in_an_unknown_room_shows_the_message_inline(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    r = c.post(
        "/console/sessions",
        data={"client": "c-1", "room": "room-9", "modality": "in_person", "csrf": csrf},
    )
    assert r.status_code == 422
    assert "Choose one of the practice&#39;s rooms." in r.text
    r = c.post("/console/sessions", data={"client": " ", "room": "room-1", "csrf": csrf})
    assert r.status_code == 422
    assert "Enter the client" in r.text


def test_a_refused_command_shows_the_protocols_message(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    r = c.post(
        "/console/sessions",
        data={"client": "c-1", "room": "room-1", "billed_codes": ["12345"], "csrf": csrf},
    )
    assert r.status_code == 422
    assert "That is not a CPT code Stepout knows." in r.text
    assert "<html" in r.text  # a page, not the API's JSON


def test_a_form_post_without_the_csrf_token_is_refused(web: Web) -> None:
    c = web.client
    login(c, "a-ther")
    r = c.post("/console/sessions", data={"client": "c-1", "room": "room-1"})
    assert r.status_code == 403
    r = c.post(
        "/console/sessions",
        data={"client": "c-1", "room": "room-1"},
        headers={"X-CSRF-Token": "forged"},
    )
    assert r.status_code == 403


def test_a_therapist_cannot_open_another_therapists_session(web: Web) -> None:
    c = web.client
    sid = start_session(c, login(c, "a-ther"))
    other = browser(web)
    csrf = login(other, "a-ther2")
    assert other.get(f"/console/sessions/{sid}").status_code == 404
    assert other.get(f"/console/sessions/{sid}/step-out?reason=technical").status_code == 404
    r = other.post(f"/console/sessions/{sid}/end", data={"csrf": csrf})
    assert r.status_code == 404
    assert "No such session" in r.text


def test_a_session_of_another_practice_is_not_found(web: Web) -> None:
    c = web.client
    sid = start_session(c, login(c, "a-ther"))
    other = browser(web)
    login(other, "b-super")
    assert other.get(f"/console/sessions/{sid}").status_code == 404


def test_a_supervisor_reads_a_session_but_may_not_start_one(web: Web) -> None:
    c = web.client
    sid = start_session(c, login(c, "a-ther"))
    sup = browser(web)
    csrf = login(sup, "a-super")
    page = sup.get(f"/console/sessions/{sid}")
    assert page.status_code == 200
    assert "step-out?reason" not in page.text
    assert sup.get("/console").status_code == 403
    r = sup.post("/console/sessions", data={"client": "c-1", "room": "room-1", "csrf": csrf})
    assert r.status_code == 403


def test_ending_a_session_from_its_page(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    r = c.post(f"/console/sessions/{sid}/end", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    page = c.get(f"/console/sessions/{sid}")
    assert "This session has ended." in page.text
    assert "End session now" not in page.text
    again = c.post(f"/console/sessions/{sid}/end", data={"csrf": csrf})
    assert again.status_code == 409
    assert "already ended" in again.text


def test_the_console_names_the_open_exit(web: Web) -> None:
    from tests.web.pages_support import step_out

    c = web.client
    csrf = login(c, "a-ther")
    exit_id = step_out(c, csrf, start_session(c, csrf))
    page = c.get("/console")
    assert f"/console/exits/{exit_id}" in page.text
    assert "You are stepped out" in page.text
    assert csrf_of(page.text) == csrf


def test_a_therapist_sees_only_their_own_exits_on_the_overview(web: Web) -> None:
    """The overview (and its export) lists exits that need attention: for a therapist, their
    own only, as everywhere else."""
    other = browser(web)
    other_csrf = login(other, "a-ther2")
    theirs = start_session(other, other_csrf, room="room-2", code="c-0002")
    their_exit = step_out(other, other_csrf, theirs)
    c = web.client
    csrf = login(c, "a-ther")
    mine = start_session(c, csrf)
    my_exit = step_out(c, csrf, mine)
    page = c.get("/supervise")
    assert page.status_code == 200
    assert my_exit in page.text
    assert their_exit not in page.text
    export = c.get("/supervise/export/exits.json")
    assert export.status_code == 200
    assert my_exit in export.text
    assert their_exit not in export.text
    supervisor = browser(web)
    login(supervisor, "a-super")
    assert their_exit in supervisor.get("/supervise").text
