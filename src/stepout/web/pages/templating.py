"""Rendering pages: the Jinja2 environment (autoescaping on), the headers every page carries
(no caching of health data, no referrer that could leak a token, a strict Content Security
Policy: scripts and styles come from /static only), and filters that show instants in the
practice's time zone."""

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from fastapi import Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from stepout.domain.instants import Instant, to_datetime

TEMPLATES: Final = Path(__file__).resolve().parent.parent / "templates"

_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def zoned(instant: Instant, zone: str) -> datetime:
    return to_datetime(instant).astimezone(ZoneInfo(zone))


def clock(instant: Instant | None, zone: str = "UTC") -> str:
    """`14:05` in the practice's time zone."""
    return "" if instant is None else zoned(instant, zone).strftime("%H:%M")


def day(instant: Instant | None, zone: str = "UTC") -> str:
    """`Tue 3 Mar 2026` in the practice's time zone."""
    if instant is None:
        return ""
    moment = zoned(instant, zone)
    return f"{moment:%a} {moment.day} {moment:%b %Y}"


def epoch_ms(instant: Instant | None) -> str:
    """Milliseconds since the epoch, for the page's scripts."""
    return "" if instant is None else str(instant // 1000)


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(clock=clock, day=day, epoch_ms=epoch_ms, plural=plural)
templates = Jinja2Templates(env=_env)


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = status.HTTP_200_OK,
    *,
    embeddable: bool = False,
) -> Response:
    """The page `name` with `context`. Staff pages refuse to be framed (clickjacking); the
    room display (`embeddable`) may sit inside a telehealth window."""
    values = {"user": None, "csrf": None, "zone": "UTC", "nav": None, **(context or {})}
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    headers = dict(_HEADERS)
    if embeddable:
        headers["Content-Security-Policy"] = _CSP
    else:
        headers["Content-Security-Policy"] = _CSP + "; frame-ancestors 'none'"
        headers["X-Frame-Options"] = "DENY"
    response.headers.update(headers)
    return response


def redirect(url: str) -> Response:
    """See the result of a form at `url` (POST, then GET)."""
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)
