"""The API's documentation page renders from the server's own files: no CDN, no console
errors, every operation listed."""

from typing import Any

import pytest

from tests.browser.conftest import Pages, Server

pytestmark = pytest.mark.browser


def test_the_api_docs_render_without_leaving_the_server(server: Server, pages: Pages) -> None:
    page: Any = pages.open({"viewport": {"width": 1280, "height": 800}})
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{server.url}/api/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=10_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/sessions/{session_id}/exits" in [p.replace("\u200b", "") for p in paths]
    assert requested
    assert all(url.startswith(server.url) or url.startswith("data:") for url in requested)
