"""A client opens the concern link shown on the room display and raises a concern; the
supervisor sees it and acknowledges it."""

import re

import pytest

from tests.browser.conftest import PHONE, TABLET, Pages, Server, sign_in

pytestmark = pytest.mark.browser

WORDS = "My therapist left the room and I did not know when she would be back."


def test_a_client_raises_a_concern_from_the_display(server: Server, pages: Pages) -> None:
    display = pages.open(TABLET)
    display.goto(server.display_url("pb", "room-1"))
    display.wait_for_selector('#display[data-connected="true"]', timeout=5000)

    therapist = pages.open(PHONE)
    sign_in(therapist, server, "b-ther")
    therapist.get_by_label("Client code").fill("c-0077")
    therapist.get_by_role("button", name="Start session").click()
    therapist.wait_for_url(re.compile(r"/console/sessions/"))
    therapist.get_by_role("button", name="End session now").click()

    display.wait_for_selector(".pane-idle:not([hidden])", timeout=1000)
    display.wait_for_selector(".concern:not([hidden])", timeout=1000)
    qr = display.locator('[data-field="qr"]')
    display.wait_for_function("() => document.querySelector('[data-field=qr]').naturalWidth > 0")
    assert qr.get_attribute("alt")
    link = display.locator('[data-field="concern_url"]').inner_text()
    assert link.startswith(f"{server.url}/c/")

    client = pages.open(PHONE)
    client.goto(link)
    client.get_by_label("Your message").fill(WORDS)
    client.get_by_role("button", name="Send to the practice").click()
    client.get_by_role("heading", name="Thank you").wait_for()

    supervisor = pages.open(PHONE)
    sign_in(supervisor, server, "b-super")
    assert supervisor.url.endswith("/supervise/dashboard")  # what needs them, at the top
    waiting = supervisor.locator("#attention-concerns")
    assert waiting.locator(".num").inner_text() == "1"
    waiting.click()
    supervisor.wait_for_url("**/supervise#concerns-h")
    card = supervisor.locator("li.card", has_text=WORDS)
    assert card.is_visible()
    card.get_by_role("button", name="Acknowledge").click()  # htmx swaps the card
    supervisor.locator("li.card", has_text="Acknowledged").wait_for()
    supervisor.reload()
    assert supervisor.locator("li.card", has_text=WORDS).count() == 0
