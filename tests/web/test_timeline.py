"""A session's page shows its timeline: the bar as SVG (widths as attributes, no inline
styles), each exit's reason and record in a text list, amendments, and the net minutes against
the billed code."""

import re

from tests.web.conftest import FakeClock, Web
from tests.web.pages_support import browser, come_back, csrf_of, login, step_out


def start_billed(web: Web, csrf: str, codes: tuple[str, ...]) -> str:
    r = web.client.post(
        "/console/sessions",
        data={
            "client": "c-0007",
            "room": "room-1",
            "modality": "in_person",
            "billed_codes": list(codes),
            "csrf": csrf,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def test_the_therapist_sees_the_timeline_with_the_exit_and_net_minutes(
    web_clocked: Web, clock: FakeClock
) -> None:
    web = web_clocked
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_billed(web, csrf, ("90837",))
    clock.advance(minutes=20)
    exit_id = step_out(c, csrf, sid, reason="technical")
    clock.advance(minutes=15)
    come_back(c, csrf, exit_id)
    clock.advance(minutes=25)
    r = c.post(f"/console/sessions/{sid}/end", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303

    page = c.get(f"/console/sessions/{sid}").text
    assert 'id="timeline-h"' in page
    assert "<svg" in page
    assert "style=" not in page.split('id="timeline-h"', 1)[1].split("</section>", 1)[0]
    # The gap sits from a third of the session to 35 of its 60 minutes.
    assert re.search(r'class="tl-gap tl-gap-technical" x="333\.3" y="16" width="250\.0"', page)
    assert "Exit 1: Technical problem" in page
    assert "Client told: before leaving" in page
    assert "I need to fix the connection; back in a few minutes." in page
    assert "Safeguards: Records put away, Screen locked, Door closed" in page
    assert "Check-in: done" in page
    assert "Signature: not signed" in page
    assert "Amendments: none" in page
    assert '<span class="num">45 min</span> face to face of 60 min' in page
    assert "Billed 90837; the minutes support 90834" in page
    assert "unsupported" in page
    assert 'href="/static/timeline.css"' in page
    assert c.get("/static/timeline.css").status_code == 200


def test_amendments_are_counted_and_a_supervisor_sees_the_timeline(
    web_clocked: Web, clock: FakeClock
) -> None:
    web = web_clocked
    c = web.client
    csrf = login(c, "a-ther")
    sid = start_billed(web, csrf, ("90834",))
    clock.advance(minutes=5)
    exit_id = step_out(c, csrf, sid)
    clock.advance(minutes=5)
    come_back(c, csrf, exit_id)
    clock.advance(minutes=45)
    csrf = login(c, "a-ther")  # 45 idle minutes end the sign-in
    ended = c.post(f"/console/sessions/{sid}/end", data={"csrf": csrf}, follow_redirects=False)
    assert ended.status_code == 303, ended.text
    signed = c.post(f"/console/exits/{exit_id}/sign", data={"csrf": csrf}, follow_redirects=False)
    assert signed.status_code == 303, signed.text
    r = c.post(
        f"/console/exits/{exit_id}/amend",
        data={
            "csrf": csrf,
            "reason": "other",
            "reason_note": "",
            "explanation": "Back in five.",
            "client_informed": "before_leaving",
            "client_attended_by": "",
            "ems": "",
            "returned": "",
            "note": "The reason was another.",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text

    sup = browser(web)
    login(sup, "a-super")
    page = sup.get(f"/console/sessions/{sid}").text
    assert "Exit 1: Other" in page
    assert "Amendments: 1 (" in page
    assert "Signature: signed" in page
    assert '<span class="num">50 min</span> face to face of 55 min' in page
    assert "Billed 90834; the minutes support 90834" in page


def test_a_session_in_progress_with_an_open_exit(web_clocked: Web, clock: FakeClock) -> None:
    c = web_clocked.client
    csrf = login(c, "a-ther")
    sid = start_billed(web_clocked, csrf, ())
    clock.advance(minutes=10)
    step_out(c, csrf, sid, reason="client_safety")
    clock.advance(minutes=10)
    page = c.get(f"/console/sessions/{sid}").text
    assert "(now, in progress)" in page
    assert "not back yet" in page
    assert "tl-gap-open" in page
    assert '<span class="num">10 min</span> face to face of 20 min so far' in page
    assert csrf_of(page)


def test_an_exits_page_shows_the_sessions_timeline_with_this_exit_marked(
    web_clocked: Web, clock: FakeClock
) -> None:
    c = web_clocked.client
    csrf = login(c, "a-ther")
    sid = start_billed(web_clocked, csrf, ("90832",))
    clock.advance(minutes=5)
    first = step_out(c, csrf, sid)
    assert 'id="timeline-h"' not in c.get(f"/console/exits/{first}").text  # the away screen
    clock.advance(minutes=2)
    come_back(c, csrf, first)
    clock.advance(minutes=5)
    second = step_out(c, csrf, sid, reason="other", reason_note="A delivery at the door.")
    clock.advance(minutes=3)
    come_back(c, csrf, second)
    page = c.get(f"/console/exits/{second}").text
    assert 'id="timeline-h"' in page
    assert f'href="/console/exits/{first}">open exit 1</a>' in page
    assert 'class="tl-event tl-current" aria-current="true"' in page
    assert "Exit 2: Other" in page
