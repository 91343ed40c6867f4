"""A supervisor acknowledges a finding with a note, assigns it to a therapist and resolves it,
on the overview's queue (htmx swaps the card each time)."""

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from tests.browser.conftest import TABLET, Pages, Server, sign_in

pytestmark = pytest.mark.browser

NOTE = "Synthetic note: talked it through with the therapist."


def _records(server: Server) -> None:
    """Yesterday, in practice pa: a session of a-ther with an exit not checked in."""
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    lines = [
        {"kind": "session", "id": "s-br-1", "practice": "pa", "therapist": "a-ther",
         "client": "c-0001", "room": "room-1", "modality": "in_person",
         "start": f"{day}T10:00:00+00:00", "end": f"{day}T10:55:00+00:00",
         "billed_codes": ["90834"]},
        {"kind": "exit", "id": "e-br-1", "session": "s-br-1", "source": "declared",
         "reason": "technical", "left_at": f"{day}T10:20:00+00:00",
         "returned_at": f"{day}T10:22:00+00:00", "client_informed": "before_leaving",
         "explanation": "Synthetic words.",
         "safeguards": ["records_secured", "screen_locked", "door_closed"],
         "checked_in": False, "signed_at": f"{day}T11:00:00+00:00"},
    ]  # fmt: skip
    token = server.practices["pa"].tokens["a-admin"]
    r = httpx.post(
        f"{server.url}/api/v1/records",
        content=b"".join(orjson.dumps(line) + b"\n" for line in lines),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text


def test_a_supervisor_reviews_a_finding_on_the_overview(server: Server, pages: Pages) -> None:
    _records(server)
    page = pages.open(TABLET)
    sign_in(page, server, "a-super")
    assert page.url.endswith("/supervise/dashboard")
    page.locator("#attention-findings").click()  # the count of findings to review
    page.wait_for_url("**/supervise#queue-h")
    card = page.locator("li.card", has_text="no-check-in")
    assert card.locator(".review-state").inner_text().startswith("Open")

    card.get_by_label("Note").fill(NOTE)
    card.get_by_role("button", name="Acknowledge").click()  # htmx swaps the card
    card = page.locator("li.card", has_text="no-check-in")
    card.locator('.review-state[data-state="acknowledged"]').wait_for()
    assert NOTE in card.inner_text()

    card.get_by_label("Assign to").select_option(label="a-ther2")
    card.get_by_role("button", name="Assign").click()
    page.locator("li.card", has_text="assigned to a-ther2").wait_for()

    card = page.locator("li.card", has_text="no-check-in")
    card.get_by_label("Note").fill("Resolved: checked in from now on.")
    card.get_by_role("button", name="Resolve").click()
    card.locator('.review-state[data-state="resolved"]').wait_for()

    page.reload()
    card = page.locator("li.card", has_text="no-check-in")
    assert card.locator('.review-state[data-state="resolved"]').count() == 1
    assert card.get_by_role("button").count() == 0
