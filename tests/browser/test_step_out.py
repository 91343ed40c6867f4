"""A therapist steps out on a phone while the room's tablet shows the display: the display
changes within a second of the tap, and back again after "Back". The health-emergency flow,
end to end."""

import re
from typing import Any

import pytest

from tests.browser.conftest import PHONE, TABLET, Pages, Server, sign_in

pytestmark = pytest.mark.browser

WORDS = "The connection dropped; I'll be back in a few minutes."


def start_session(page: Any, room: str, code: str) -> None:
    page.get_by_label("Client code").fill(code)
    page.get_by_label("Room").select_option(room)
    page.get_by_role("button", name="Start session").click()
    page.wait_for_url(re.compile(r"/console/sessions/"))


def open_display(pages: Pages, url: str) -> Any:
    display = pages.open(TABLET)
    display.goto(url)
    display.wait_for_selector('#display[data-connected="true"]', timeout=5000)
    return display


def test_stepping_out_changes_the_room_display_within_a_second(
    server: Server, pages: Pages
) -> None:
    display = open_display(pages, server.display_url("pa", "room-1"))
    assert display.locator(".pane-idle").is_visible()

    page = pages.open(PHONE)
    page.goto(f"{server.url}/login")
    sign_in(page, server, "a-ther")
    assert page.url.endswith("/console")
    page.keyboard.press("Tab")  # the first stop is the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    start_session(page, "room-1", "c-0417")
    display.wait_for_selector(".pane-in_session:not([hidden])", timeout=1000)

    page.get_by_role("link", name="Today", exact=True).click()
    page.get_by_role("link", name=re.compile("c-0417")).click()

    page.get_by_role("link", name=re.compile("Technical problem")).click()
    page.wait_for_url(re.compile(r"/step-out\?reason=technical"))
    told = page.get_by_label("I told the client before leaving")
    assert not told.is_checked()
    page.get_by_label("What you say to the client").fill(WORDS)
    told.check()
    for safeguard in ("Records put away", "Screen locked", "Door closed"):
        box = page.get_by_label(safeguard)
        assert not box.is_checked()
        box.check()
    page.get_by_label("2 min").check()

    page.get_by_role("button", name="Step out now").click()
    display.wait_for_selector(".pane-away:not([hidden])", timeout=1000)
    assert display.locator('[data-field="explanation"]').inner_text() == WORDS
    assert "expect to be back" in display.locator('[data-field="expected_text"]').inner_text()
    assert "call 911" in display.locator(".help").inner_text()

    page.wait_for_url(re.compile(r"/console/exits/"))
    page.wait_for_function(
        "() => /^\\d+:\\d\\d$/.test(document.querySelector('.timer-value').textContent)"
    )
    elapsed = display.locator('[data-field="elapsed"]').inner_text()
    assert elapsed == "less than a minute ago"

    page.get_by_text("Back", exact=True).click()
    page.get_by_role("button", name="Yes, I checked in").click()
    display.wait_for_selector(".pane-in_session:not([hidden])", timeout=1000)
    page.wait_for_url(re.compile(r"/console/exits/"))
    addendum = page.locator("#addendum-text").inner_text()
    assert "On my return I checked in with the client." in addendum

    page.get_by_role("link", name=re.compile("Session with")).click()
    page.get_by_role("button", name="End session now").click()
    display.wait_for_selector(".pane-idle:not([hidden])", timeout=1000)
    display.wait_for_selector(".concern:not([hidden])", timeout=1000)


def test_a_health_emergency_end_to_end(server: Server, pages: Pages) -> None:
    display = open_display(pages, server.display_url("pa", "room-2"))
    page = pages.open(PHONE)
    sign_in(page, server, "a-ther2")
    start_session(page, "room-2", "c-0900")

    page.get_by_role("link", name=re.compile("Health emergency")).click()
    page.wait_for_url(re.compile(r"reason=health_emergency"))
    assert page.get_by_label("Decide while away").is_checked()
    page.get_by_role("button", name="Step out now").click()
    display.wait_for_selector(".pane-away:not([hidden])", timeout=1000)
    assert "get help right away" in display.locator('[data-field="explanation"]').inner_text()

    page.wait_for_url(re.compile(r"/console/exits/"))
    todo = page.locator(".todo strong")
    assert todo.filter(has_text="No decision about emergency services.").is_visible()
    page.evaluate("window.samePage = true")
    page.get_by_role("button", name="Emergency services called").click()
    todo.filter(has_text="No decision about emergency services.").wait_for(state="detached")
    page.get_by_label("Who is staying with the client?").fill("Reception")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("nobody recorded yet").wait_for(state="detached")
    assert page.locator("li.card strong", has_text="Reception").is_visible()
    assert page.locator("li.card strong", has_text="called").is_visible()
    assert page.evaluate("window.samePage === true")  # htmx swapped the panel, no reload

    page.get_by_text("Back", exact=True).click()
    page.get_by_role("button", name="Not yet").click()
    display.wait_for_selector(".pane-in_session:not([hidden])", timeout=1000)
    page.wait_for_url(re.compile(r"/console/exits/"))
    page.get_by_role("button", name="I checked in with the client").click()
    todo.filter(has_text="No check-in with the client").wait_for(state="detached")
    text = page.locator("#addendum-text").inner_text()
    assert "because of a health emergency" in text
    assert "Emergency services were called." in text
    assert "Reception stayed with the client while I was away." in text
    page.get_by_role("button", name="Sign", exact=True).click()
    page.locator(".badge-ok", has_text="Signed").wait_for()
