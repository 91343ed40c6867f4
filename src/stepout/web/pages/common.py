"""What the staff pages share: where each role starts, the practice's time zone, the values
every signed-in page's layout needs, and the small checks of form input."""

from datetime import date
from typing import Any, Final

from fastapi import Request

from stepout.domain.accounts import User
from stepout.domain.instants import Instant
from stepout.domain.permissions import allowed
from stepout.services.ports import WebSession
from stepout.web.pages.templating import zoned
from stepout.web.state import AppState

HOMES: Final = {
    "therapist": "/console",
    "supervisor": "/supervise/dashboard",  # what needs them first, then the charts
    "admin": "/supervise",
    "biller": "/supervise",
}


def home_for(user: User) -> str:
    return HOMES.get(user.role, "/supervise")


def safe_next(value: str | None) -> str | None:
    """A local path to go to after signing in, or None (never another site)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(c in value for c in "\r\n\\") or len(value) > 500:
        return None
    return value


def zone_of(state: AppState, practice: str) -> str:
    with state.db.uow(read_only=True) as uow:
        found = uow.records.practice(practice)
    return found.timezone if found is not None else "UTC"


def today_in(zone: str, at: Instant) -> date:
    return zoned(at, zone).date()


def nav_for(user: User) -> list[tuple[str, str]]:
    """The layout's links for the user's role: (path, label)."""
    links: list[tuple[str, str]] = []
    if allowed(user, "session.start"):
        links.append(("/console", "Today"))
    if allowed(user, "dashboard.read"):
        links.append(("/supervise/dashboard", "Dashboard"))
    if user.role != "therapist":
        links.append(("/supervise", "Overview"))
    if allowed(user, "accounts.read"):
        links.append(("/admin", "Users and rooms"))
    return links


def staff(session: WebSession, zone: str, **values: Any) -> dict[str, Any]:
    """The context of a signed-in page: the user, the CSRF token its forms carry, the zone."""
    user = session.user
    return {
        "user": user,
        "csrf": session.csrf,
        "zone": zone,
        "nav": nav_for(user),
        "mfa_waived": session.mfa_waived,  # the demo practice: said on every page
        **values,
    }


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def text(value: str | None, limit: int = 2000) -> str | None:
    """Form text stripped; None when blank. Longer than `limit`: ValueError."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > limit:
        raise ValueError(f"at most {limit} characters")
    return value
