"""The dashboard draws its five charts in the system Chromium from the vendored vega under the
pages' strict CSP (no eval, no inline style), with no console error; a click on a bar opens
the sessions behind it."""

from typing import Any

import httpx
import pytest

from tests.browser.conftest import TABLET, Pages, Server, shot, sign_in
from tests.browser.test_accessibility import violations
from tests.web.test_api_support import exit_line, jsonl, session_line

pytestmark = pytest.mark.browser

CHARTS = ("exits-by-week", "therapist-share", "absences", "findings-by-week", "billing-by-week")


def _import(server: Server) -> None:
    body = jsonl(
        session_line("s-1", billed_codes=["90834"]),
        exit_line("e-1", "s-1"),
        session_line(
            "s-2",
            therapist="a-ther2",
            start="2026-02-10T10:00:00+00:00",
            end="2026-02-10T10:55:00+00:00",
            billed_codes=["90837"],
        ),
        exit_line(
            "e-2",
            "s-2",
            reason="client_safety",
            left_at="2026-02-10T10:10:00+00:00",
            returned_at="2026-02-10T10:22:00+00:00",
        ),
    )
    headers = {**server.practices["pa"].auth("a-admin"), "Content-Type": "application/x-ndjson"}
    r = httpx.post(f"{server.url}/api/v1/records", content=body, headers=headers, timeout=10)
    assert r.status_code < 300, r.text


def test_the_dashboard_draws_its_charts_and_a_bar_leads_to_its_sessions(
    server: Server, pages: Pages
) -> None:
    _import(server)
    page: Any = pages.open(TABLET)
    page.goto(f"{server.url}/login")
    sign_in(page, server, "a-super")
    page.goto(f"{server.url}/supervise/dashboard?from=2026-02-01&to=2026-02-28")
    for chart in CHARTS:
        drawn = page.locator(f'[data-chart="{chart}-spec"]')
        drawn.and_(page.locator('[data-drawn="true"]')).wait_for(timeout=10000)
        assert drawn.locator("svg").count() == 1, chart
        assert drawn.locator("svg .mark-rect path, svg .mark-rule line").count() > 0, chart
    shot(page, "dashboard", full_page=True)
    bar = page.locator('[data-chart="exits-by-week-spec"] svg .mark-rect path').first
    with page.expect_navigation():
        bar.click()
    assert "/supervise/dashboard/sessions" in page.url
    assert page.locator("#sessions tbody tr").count() >= 1


def test_the_dashboard_passes_axe(server: Server, pages: Pages) -> None:
    _import(server)
    page: Any = pages.open({**TABLET, "bypass_csp": True})  # to add axe to the page
    page.goto(f"{server.url}/login")
    sign_in(page, server, "a-super")
    page.goto(f"{server.url}/supervise/dashboard?from=2026-02-01&to=2026-02-28")
    page.locator('[data-drawn="true"]').nth(len(CHARTS) - 1).wait_for(timeout=10000)
    page.locator("details.more").first.locator("summary").click()
    assert violations(page) == []
