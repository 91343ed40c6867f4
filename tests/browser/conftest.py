"""Browser tests: a real uvicorn server on a loopback port in a background thread, on a fresh
SQLite database populated as the web tests' (practices `pa` and `pb`), and the system
Chromium driven by Playwright (never a downloaded browser).

Set STEPOUT_SCREENSHOTS=1 to (re)write the screenshots under docs/screenshots/.
"""

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher

from stepout.services import credentials
from stepout.web.app import create_app
from stepout.web.state import AppState
from tests.conftest import service_unavailable
from tests.web.conftest import (
    PASSWORD,
    Practice,
    authenticator,
    populate,
    settings_for,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS_ON = os.environ.get("STEPOUT_SCREENSHOTS") == "1"
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2 if SCREENSHOTS_ON else 1,
}
TABLET: dict[str, Any] = {"viewport": {"width": 1180, "height": 820}}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# The screenshots are collected only when asked for, so that a test run never rewrites them.
collect_ignore = [] if SCREENSHOTS_ON else ["test_screenshots.py"]


@dataclass
class Server:
    url: str
    practices: dict[str, Practice]
    state: AppState

    def display_url(self, practice: str, room: str) -> str:
        token = self.practices[practice].room_tokens[room]
        return f"{self.url}/display/{room}?token={token}"


@dataclass
class Pages:
    """Opens pages, each in its own browser context (its own cookies), and keeps the errors
    of their consoles; closes them before the server stops."""

    browser: Any
    errors: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def open(self, device: dict[str, Any]) -> Any:
        context = self.browser.new_context(**device)
        self.contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda m: self.errors.append(f"{page.url}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture(autouse=True)
def _quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the web tests: the smallest argon2 cost for the ten synthetic accounts."""
    quick = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(credentials, "_hasher", quick)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    app = create_app(settings_for(f"sqlite:///{tmp_path / 'stepout.db'}", tmp_path))
    state = app.state.stepout
    practices = {"pa": populate(state, "pa", "a"), "pb": populate(state, "pb", "b")}
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, access_log=False
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", practices, state)
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        service_unavailable("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Error as e:
            service_unavailable("Chromium", str(e).splitlines()[0])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def pages(server: Server, chromium: Any) -> Iterator[Pages]:
    """Pages on the test's server; at the end, no page may have logged an error."""
    opened = Pages(chromium)
    try:
        yield opened
    finally:
        opened.close()
    assert opened.errors == [], "errors in the browser console"


def sign_in(page: Any, server: Server, username: str) -> None:
    """The password, then the code of the account's authenticator."""
    app = authenticator(server.state, server.practices, username)  # set up on first use
    if not page.url.endswith("/login"):
        page.goto(f"{server.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    if "/login/code" in page.url:
        code = app.code(server.state.now)
        page.get_by_label("Code").fill(code)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_load_state()


def shot(page: Any, name: str, *, full_page: bool = False) -> None:
    """Save a screenshot of the page when STEPOUT_SCREENSHOTS=1 (CI leaves them alone)."""
    if SCREENSHOTS_ON:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
