"""Edges of the pages: an expired sign-in inside an htmx request, every open concern on the
supervisor's overview however old, and the therapist's change stream."""

from tests.integration.builders import T0, concern, session
from tests.web.conftest import Web
from tests.web.pages_support import login


def test_an_htmx_request_without_a_sign_in_is_sent_to_the_login_page(web: Web) -> None:
    r = web.client.get("/console", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 204
    assert r.headers["HX-Redirect"] == "/login?next=/console"
    plain = web.client.get("/console", follow_redirects=False)
    assert plain.status_code == 303
    assert plain.headers["location"] == "/login?next=/console"


def test_the_overview_lists_an_open_concern_from_long_ago(web: Web) -> None:
    with web.state.db.uow() as uow:
        uow.ledger.append(
            [
                session("s-old", T0, 50, practice="pa", therapist="a-ther"),
                concern("k-old", "s-old", T0 + 60 * 60_000_000, practice="pa"),
            ]
        )
        uow.commit()
    login(web.client, "a-super")
    page = web.client.get("/supervise")
    assert page.status_code == 200
    assert "The session was interrupted." in page.text


def test_the_change_stream_is_for_therapists_only(web: Web) -> None:
    login(web.client, "a-bill")
    r = web.client.get("/console/events")
    assert r.status_code == 403
