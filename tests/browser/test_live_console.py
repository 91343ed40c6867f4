"""A therapist's console follows changes made elsewhere: an exit declared from another device
(here the API) shows on the open console without a reload, and the return clears it."""

from typing import Any

import httpx
import pytest

from tests.browser.conftest import PHONE, Pages, Server, sign_in

pytestmark = pytest.mark.browser


def test_the_console_shows_an_exit_declared_on_another_device(server: Server, pages: Pages) -> None:
    auth = server.practices["pa"].auth("a-ther")
    api = httpx.Client(base_url=f"{server.url}/api/v1", headers=auth, timeout=5)
    sid = api.post("/sessions", json={"client": "c-0555", "room": "room-2"}).json()["id"]

    page: Any = pages.open(PHONE)
    page.goto(f"{server.url}/login")
    sign_in(page, server, "a-ther")
    assert page.url.endswith("/console")
    assert page.locator(".banner").count() == 0
    page.wait_for_timeout(300)  # the page's event stream connects

    declared = api.post(
        f"/sessions/{sid}/exits",
        json={"reason": "technical", "explanation": "One moment.", "client_informed": True},
    )
    assert declared.status_code == 201
    page.wait_for_selector(".banner", timeout=2000)
    assert "You are stepped out" in page.locator(".banner").inner_text()

    back = api.post(f"/exits/{declared.json()['id']}/return", json={"checked_in": True})
    assert back.status_code == 200
    page.wait_for_selector(".banner", state="detached", timeout=2000)
    api.close()


def test_a_form_being_filled_in_is_not_replaced(server: Server, pages: Pages) -> None:
    auth = server.practices["pa"].auth("a-ther")
    api = httpx.Client(base_url=f"{server.url}/api/v1", headers=auth, timeout=5)
    page: Any = pages.open(PHONE)
    page.goto(f"{server.url}/login")
    sign_in(page, server, "a-ther")
    page.get_by_label("Client code").fill("c-0777")
    page.wait_for_timeout(300)
    api.post("/sessions", json={"client": "c-0556", "room": "room-2"})
    page.wait_for_timeout(1000)
    assert page.get_by_label("Client code").input_value() == "c-0777"
    api.close()
