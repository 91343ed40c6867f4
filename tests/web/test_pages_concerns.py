"""The client's concern link (no sign-in; a wrong code is not found; a double-submit token on
the form), and the supervisor's overview that shows and acknowledges concerns."""

from fastapi.testclient import TestClient

from stepout.web.links import concern_path
from tests.web.conftest import Web
from tests.web.pages_support import browser, csrf_of, login, start_session

TEXT = "The therapist left twice and I did not know why."


def concern_link(web: Web) -> tuple[str, str]:
    c = browser(web)
    sid = start_session(c, login(c, "a-ther"))
    return sid, concern_path(web.state.keys.link_key, sid)


def raise_concern(client: TestClient, link: str, text: str = TEXT) -> None:
    form = client.get(link)
    assert form.status_code == 200
    r = client.post(link, data={"words": text, "csrf": csrf_of(form.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert "Thank you" in client.get(r.headers["location"]).text


def stored_concerns(web: Web, sid: str) -> list[str]:
    with web.state.db.uow(read_only=True) as uow:
        return [c.text for c in uow.records.concerns_of_session(sid)]


def test_a_wrong_code_or_session_is_not_found(web: Web) -> None:
    sid, _ = concern_link(web)
    c = web.client
    assert c.get(f"/c/{sid}/{'0' * 32}").status_code == 404
    assert c.get(f"/c/s_unknown/{'0' * 32}").status_code == 404
    assert c.post(f"/c/{sid}/{'0' * 32}", data={"words": TEXT}).status_code == 404
    page = c.get(f"/c/{sid}/nope")
    assert page.status_code == 404
    assert "This link is not valid." in page.text
    assert stored_concerns(web, sid) == []


def test_a_client_raises_a_concern_without_signing_in(web: Web) -> None:
    sid, link = concern_link(web)
    raise_concern(web.client, link)
    assert stored_concerns(web, sid) == [TEXT]


def test_the_concern_form_needs_its_token(web: Web) -> None:
    sid, link = concern_link(web)
    c = web.client
    c.get(link)
    r = c.post(link, data={"words": TEXT})
    assert r.status_code == 403
    assert TEXT in r.text  # their words are kept for another try
    r = c.post(link, data={"words": TEXT, "csrf": "forged"})
    assert r.status_code == 403
    assert stored_concerns(web, sid) == []


def test_an_empty_or_too_long_concern_is_refused_kindly(web: Web) -> None:
    sid, link = concern_link(web)
    c = web.client
    r = c.post(link, data={"words": "  ", "csrf": csrf_of(c.get(link).text)})
    assert r.status_code == 422
    assert "Please write your message" in r.text
    r = c.post(link, data={"words": "x" * 2001, "csrf": csrf_of(c.get(link).text)})
    assert r.status_code == 422
    assert stored_concerns(web, sid) == []


def test_the_supervisor_sees_and_acknowledges_a_concern(web: Web) -> None:
    sid, link = concern_link(web)
    raise_concern(web.client, link)
    sup = browser(web)
    csrf = login(sup, "a-super")
    page = sup.get("/supervise")
    assert TEXT in page.text
    with web.state.db.uow(read_only=True) as uow:
        concern = uow.records.concerns_of_session(sid)[0]
    action = f"/supervise/concerns/{concern.id}/acknowledge"
    assert action in page.text
    r = sup.post(action, headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert "Acknowledged" in r.text
    assert "<html" not in r.text  # the row only, for htmx
    assert TEXT not in sup.get("/supervise").text
    again = sup.post(action, data={"csrf": csrf})
    assert again.status_code == 409
    assert "already acknowledged" in again.text


def test_concern_text_is_for_supervisors_and_admins_only(web: Web) -> None:
    sid, link = concern_link(web)
    raise_concern(web.client, link)
    for username, sees in (("a-admin", True), ("a-bill", False), ("a-ther", False)):
        c = browser(web)
        csrf = login(c, username)
        assert (TEXT in c.get("/supervise").text) is sees
        with web.state.db.uow(read_only=True) as uow:
            concern_id = uow.records.concerns_of_session(sid)[0].id
        r = c.post(f"/supervise/concerns/{concern_id}/acknowledge", data={"csrf": csrf})
        assert r.status_code == 403
    other = browser(web)
    csrf = login(other, "b-super")
    assert TEXT not in other.get("/supervise").text
    r = other.post(f"/supervise/concerns/{concern_id}/acknowledge", data={"csrf": csrf})
    assert r.status_code == 404


def test_the_overview_lists_exits_needing_attention(web: Web) -> None:
    from tests.web.pages_support import come_back, step_out

    c = web.client
    csrf = login(c, "a-ther")
    sid = start_session(c, csrf)
    exit_id = step_out(c, csrf, sid, safeguards=[])
    come_back(c, csrf, exit_id)
    sup = browser(web)
    login(sup, "a-super")
    page = sup.get("/supervise")
    assert f"/console/exits/{exit_id}" in page.text
    assert "Findings, last 7 days" in page.text


def test_the_admin_sees_users_and_rooms_read_only(web: Web) -> None:
    c = web.client
    login(c, "a-admin")
    page = c.get("/admin")
    assert page.status_code == 200
    assert "a-ther2" in page.text
    assert "room-2" in page.text
    assert "b-ther" not in page.text
    other = browser(web)
    login(other, "a-super")
    assert other.get("/admin").status_code == 403
