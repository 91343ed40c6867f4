"""The screenshots under docs/screenshots/ (README): run with STEPOUT_SCREENSHOTS=1.

    STEPOUT_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_screenshots.py

Therapist pages on a phone, the room display on a tablet in landscape (and in a small
telehealth window), the supervisor's pages on a laptop (1280 x 800): the dashboard they land
on, the findings chart, the queue, a session's timeline and the monthly report. Synthetic
data only: ten weeks of a generated practice up to last week, and a therapist's morning."""

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stepout.adapters.db.drilldown import sessions_with_exits
from stepout.adapters.reports.monthly import build_report, render_html
from stepout.domain.commands import DeclareExit, EndSession, RaiseConcern, Return, StartSession
from stepout.services.dashboard import DashboardFilter
from stepout.services.importing import import_records
from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl
from stepout.web.actions import perform
from stepout.web.links import concern_path
from stepout.web.pages.common import today_in
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

LAPTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1}
TELEHEALTH: dict[str, Any] = {"viewport": {"width": 520, "height": 400}}
LARGEST = 200_000  # bytes: small enough for a README


def shrink(path: Path) -> None:
    """A screenshot over LARGEST bytes, in 256 colours (text stays sharp; the pages use few)."""
    from PIL import Image  # with WeasyPrint, in the test extra

    if path.stat().st_size <= LARGEST:
        return
    with Image.open(path) as image:
        fewer = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    fewer.save(path, optimize=True)


def timeline_session(server: Server) -> str:
    """A generated session of last month's with a client-safety exit: a timeline to show."""
    today = today_in("UTC", server.state.now())
    last_month = DashboardFilter(
        "pa", today - timedelta(days=60), today - timedelta(days=7), reason="client_safety"
    )
    with server.state.db.uow(read_only=True) as uow:
        (found,) = sessions_with_exits(uow.connection, last_month, "UTC", 1)
    return found


def history(server: Server) -> str:
    """Ten weeks of practice pa (four therapists, about 100 sessions a week), ending last
    week; returns the month the report shows (the last whole month in it)."""
    today = today_in("UTC", server.state.now())
    monday = today - timedelta(days=today.weekday())
    config = GeneratorConfig(
        sessions=1000, seed=5, practice="pa", start=monday - timedelta(weeks=10), therapists=4,
        timezone="UTC",
    )  # fmt: skip
    buffer = io.BytesIO()
    write_jsonl(generate(config), buffer)
    buffer.seek(0)
    with server.state.db.uow() as uow:
        import_records(uow, buffer)
    last = today.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


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
    month = history(server)
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
    sign_in(supervisor, server, "a-super")  # lands on the dashboard
    drawn = supervisor.locator('[data-drawn="true"]')
    drawn.nth(4).wait_for(timeout=20000)  # all five charts
    shot(supervisor, "dashboard")
    supervisor.locator("#findings-by-week-h").scroll_into_view_if_needed()
    supervisor.evaluate("window.scrollBy(0, -20)")
    shot(supervisor, "dashboard-findings")
    supervisor.goto(f"{server.url}/supervise")
    shot(supervisor, "supervisor")
    supervisor.locator("#queue-h").scroll_into_view_if_needed()
    supervisor.evaluate("window.scrollBy(0, -12)")
    shot(supervisor, "findings-queue")
    supervisor.goto(f"{server.url}/console/sessions/{timeline_session(server)}")
    shot(supervisor, "session-timeline")

    with server.state.db.uow(read_only=True) as uow:
        built = build_report(
            uow.connection, uow.records, month, server.state.policy, server.state.now(), ["pa"]
        )
    report = pages.open(LAPTOP)
    report.set_content(render_html(built))
    shot(report, "report")
    report.locator('[data-chart="findings-by-week"]').scroll_into_view_if_needed()
    shot(report, "report-findings")

    admin = pages.open(LAPTOP)
    sign_in(admin, server, "a-admin")
    admin.goto(f"{server.url}/admin")
    shot(admin, "admin")
    for name in ("dashboard", "findings-queue", "session-timeline", "report", "console"):
        assert (SCREENSHOTS / f"{name}.png").exists(), name
    for path in SCREENSHOTS.glob("*.png"):
        shrink(path)
    too_big = {
        p.name: p.stat().st_size for p in SCREENSHOTS.glob("*.png") if p.stat().st_size > LARGEST
    }
    assert too_big == {}
