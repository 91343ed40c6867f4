"""The therapist is asked on the console why a sensor saw them out of session, answers with a
reason and a note, and carries on with the exit's usual follow-up; the timeline marks the exit
as the sensor's. Every id and text is synthetic."""

import re

from stepout.domain.commands import DetectExit, SensorReturn
from stepout.domain.records import Exit
from tests.web.conftest import Web
from tests.web.pages_support import login, start_session, step_out

PROMPT = re.compile(
    r"A sensor saw you out of session \(c-0077, room-1\) from \d\d:\d\d to \d\d:\d\d"
)


def sensed_exit(web: Web, session: str) -> Exit:
    """An exit the sensor detected and saw end, as the presence service records it."""
    flow = web.state.workflow
    s = web.state.db
    with s.uow(read_only=True) as uow:
        found = uow.records.session(session)
    assert found is not None
    flow.run(DetectExit(practice="pa", session=session, left_at=found.start))
    back = flow.run(SensorReturn(practice="pa", session=session, returned_at=web.state.now()))
    assert isinstance(back.record, Exit)
    return back.record


def test_the_console_asks_why_and_the_answer_classifies_the_exit(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf, code="c-0077")
    x = sensed_exit(web, sid)
    page = c.get("/console")
    assert PROMPT.search(page.text), page.text
    assert f'action="/console/exits/{x.id}/classify"' in page.text

    r = c.post(
        f"/console/exits/{x.id}/classify",
        data={"reason": "technical", "reason_note": "Fetched a charger.", "csrf": csrf},
    )
    assert (r.status_code, r.url.path) == (200, f"/console/exits/{x.id}")  # redirected there
    with web.state.db.uow(read_only=True) as uow:
        classified = uow.records.exit(x.id)
    assert classified is not None
    assert (classified.reason, classified.reason_note) == ("technical", "Fetched a charger.")
    assert not PROMPT.search(c.get("/console").text)  # asked once
    exit_page = c.get(f"/console/exits/{x.id}").text
    assert "seen by a sensor, not declared" in exit_page  # the timeline says whose exit
    assert "What the client was told is not recorded." in exit_page  # the follow-up


def test_a_reason_is_required_and_a_declared_exit_is_not_classified(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf, code="c-0077")
    x = sensed_exit(web, sid)
    r = c.post(f"/console/exits/{x.id}/classify", data={"reason": "", "csrf": csrf})
    assert r.status_code == 422
    assert "That is not a known reason for stepping out." in r.text
    assert PROMPT.search(c.get("/console").text)  # still asked


def test_another_therapist_cannot_classify_it(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf, code="c-0077")
    x = sensed_exit(web, sid)
    other = web.client.__class__(web.app, base_url="http://127.0.0.1")
    other_csrf = login(other, "a-ther2")
    assert not PROMPT.search(other.get("/console").text)
    r = other.post(f"/console/exits/{x.id}/classify", data={"reason": "other", "csrf": other_csrf})
    assert r.status_code == 404


def test_stepping_out_while_the_sensor_has_the_exit_open_declares_that_exit(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf, code="c-0077")
    flow = web.state.workflow
    with web.state.db.uow(read_only=True) as uow:
        found = uow.records.session(sid)
    assert found is not None
    sensed = flow.run(DetectExit(practice="pa", session=sid, left_at=found.start)).record
    form = c.get(f"/console/sessions/{sid}/step-out?reason=technical").text
    assert "A sensor saw you leave this session at" in form
    assert "tap Back first" not in form
    assert step_out(c, csrf, sid) == sensed.id  # the same exit, now declared
    with web.state.db.uow(read_only=True) as uow:
        (x,) = uow.records.exits_of_session(sid)
    assert (x.source, x.reason, x.left_at) == ("sensor", "technical", found.start)
    assert x.safeguards == {"records_secured", "screen_locked", "door_closed"}
