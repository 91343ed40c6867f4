"""The screenshots under docs/screenshots/ (README): run with STEPOUT_SCREENSHOTS=1.

    STEPOUT_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_screenshots.py

Therapist pages on a phone, the room display on a tablet in landscape (and in a small
telehealth window), the supervisor's pages on a laptop. Synthetic data only."""

from typing import Any

import pytest

from stepout.domain.commands import DeclareExit, EndSession, RaiseConcern, Return, StartSession
from stepout.web.actions import perform
from stepout.web.links import concern_path
from tests.browser.conftest import (
    PHONE,
    SCREENSHOTS,
    TABLET,
    Pages,
    Server,
    shot,
    sign_in,
)

pytestmark = pytest.mark.browser

LAPTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
TELEHEALTH: dict[str, Any] = {"viewport": {"width": 520, "height": 400}}


def seed(server: Server) -> dict[str, str]:
    """A therapist's morning: one session ended with an exit to sign and a client's concern,
    one in progress."""
    state = server.state

    def run(command: Any) -> str:
        record_id: str = perform(state, command).record.id
        return record_id

    base = {"practice": "pa", "actor": "a-ther"}
    earlier = run(
        StartSession(
            **base,
            therapist="a-ther",
            client="c-0233",
            room="room-2",
            modality="in_person",
            billed_codes=("90837",),
        )
    )
    exit_id = run(
        DeclareExit(
            **base,
            session=earlier,
            reason="client_safety",
            client_informed="before_leaving",
            explanation="I'm stepping out for a moment to make sure you are safe.",
            safeguards=("records_secured", "door_closed"),
            expected_minutes=5,
        )
    )
    run(Return(**base, exit=exit_id, checked_in=False))
    run(EndSession(**base, session=earlier))
    run(
        RaiseConcern(
            practice="pa",
            session=earlier,
            text="I was not sure whether I should wait or leave when my therapist stepped out.",
        )
    )
    now = run(
        StartSession(
            **base, therapist="a-ther", client="c-0417", room="room-1", modality="telehealth"
        )
    )
    return {"earlier": earlier, "exit": exit_id, "now": now}


def test_screenshots(server: Server, pages: Pages) -> None:
    ids = seed(server)
    phone = pages.open(PHONE)
    phone.goto(f"{server.url}/login")
    shot(phone, "login")
    sign_in(phone, server, "a-ther")
    shot(phone, "console", full_page=True)
    phone.goto(f"{server.url}/console/sessions/{ids['now']}")
    shot(phone, "session", full_page=True)
    phone.goto(f"{server.url}/console/sessions/{ids['now']}/step-out?reason=technical")
    shot(phone, "step-out-form", full_page=True)
    phone.goto(f"{server.url}/console/sessions/{ids['now']}/step-out?reason=health_emergency")
    shot(phone, "emergency-form", full_page=True)
    phone.goto(f"{server.url}/console/exits/{ids['exit']}")
    shot(phone, "exit-to-sign", full_page=True)

    idle = pages.open(TABLET)
    idle.goto(server.display_url("pb", "room-1"))
    idle.wait_for_selector('#display[data-connected="true"]')
    shot(idle, "display-idle")
    after = pages.open(TABLET)
    after.goto(server.display_url("pa", "room-2"))
    shot(after, "display-after-session")

    display = pages.open(TABLET)
    display.goto(server.display_url("pa", "room-1"))
    display.wait_for_selector('#display[data-connected="true"]')
    shot(display, "display-in-session")
    window = pages.open(TELEHEALTH)
    window.goto(server.display_url("pa", "room-1"))
    window.wait_for_selector('#display[data-connected="true"]')

    phone.goto(f"{server.url}/console/sessions/{ids['now']}")
    phone.get_by_role("link", name="Technical problem").click()
    phone.get_by_label("I told the client before leaving").check()
    for safeguard in ("Records put away", "Screen locked", "Door closed"):
        phone.get_by_label(safeguard).check()
    phone.get_by_role("button", name="Step out now").click()
    display.wait_for_selector(".pane-away:not([hidden])")
    window.wait_for_selector(".pane-away:not([hidden])")
    phone.wait_for_timeout(1200)  # the timer has ticked
    shot(phone, "away-timer")
    shot(display, "display-away")
    shot(window, "display-away-telehealth")

    client = pages.open(PHONE)
    client.goto(server.url + concern_path(server.state.keys.link_key, ids["earlier"]))
    shot(client, "concern-form")

    supervisor = pages.open(LAPTOP)
    sign_in(supervisor, server, "a-super")
    shot(supervisor, "supervisor", full_page=True)
    admin = pages.open(LAPTOP)
    sign_in(admin, server, "a-admin")
    admin.goto(f"{server.url}/admin")
    shot(admin, "admin", full_page=True)
    assert (SCREENSHOTS / "admin.png").exists()
