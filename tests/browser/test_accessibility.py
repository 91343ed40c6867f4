"""The pages people use in a hurry or under stress meet WCAG 2 A and AA as axe-core checks
them (contrast, labels, names, landmarks), and the therapist's controls are large enough to
tap on a phone (44 CSS pixels)."""

from pathlib import Path
from typing import Any

import pytest

from stepout.web.links import concern_path
from tests.browser.conftest import PHONE, TABLET, Pages, Server, sign_in
from tests.browser.test_screenshots import seed

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.14.1 (MPL-2.0), tests only
RUN_AXE = """async () => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa"]}});
  return result.violations.map(v => ({id: v.id, impact: v.impact,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""
SMALL_TARGETS = """() => Array.from(document.querySelectorAll(
    "main button, main a.btn, main input[type=submit], main select, main textarea, main input"))
  .filter(e => e.offsetParent !== null && e.type !== "hidden")
  .map(e => {
    const box = (e.type === "checkbox" || e.type === "radio") && e.labels && e.labels[0]
      ? e.labels[0].getBoundingClientRect() : e.getBoundingClientRect();
    return {what: e.outerHTML.slice(0, 80), height: box.height};
  })
  .filter(t => t.height < 44)"""


def violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return found


def test_the_main_pages_pass_axe_and_have_large_targets(server: Server, pages: Pages) -> None:
    ids = seed(server)
    phone = pages.open({**PHONE, "bypass_csp": True})
    phone.goto(f"{server.url}/login")
    checked = {"login": violations(phone)}
    sign_in(phone, server, "a-ther")
    therapist_pages = {
        "console": "/console",
        "session": f"/console/sessions/{ids['now']}",
        "step-out": f"/console/sessions/{ids['now']}/step-out?reason=technical",
        "emergency": f"/console/sessions/{ids['now']}/step-out?reason=health_emergency",
        "exit": f"/console/exits/{ids['exit']}",
    }
    small: dict[str, list[dict[str, Any]]] = {}
    for name, path in therapist_pages.items():
        phone.goto(server.url + path)
        checked[name] = violations(phone)
        small[name] = phone.evaluate(SMALL_TARGETS)

    display = pages.open({**TABLET, "bypass_csp": True})
    display.goto(server.display_url("pa", "room-1"))
    display.wait_for_selector('#display[data-connected="true"]')
    checked["display"] = violations(display)

    client = pages.open({**PHONE, "bypass_csp": True})
    client.goto(server.url + concern_path(server.state.keys.link_key, ids["earlier"]))
    checked["concern"] = violations(client)
    small["concern"] = client.evaluate(SMALL_TARGETS)

    supervisor = pages.open({**TABLET, "bypass_csp": True})
    sign_in(supervisor, server, "a-super")  # lands on the dashboard: test_dashboard checks it
    supervisor.goto(f"{server.url}/supervise")
    checked["supervise"] = violations(supervisor)

    assert {name: found for name, found in checked.items() if found} == {}
    assert {name: found for name, found in small.items() if found} == {}
