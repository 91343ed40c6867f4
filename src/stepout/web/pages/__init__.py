"""The server-rendered pages (Jinja2 + htmx): sign-in, the therapist's console, the room
display, the client's concern form and the supervisor's views."""

from fastapi import APIRouter

from stepout.web.pages import (
    amend,
    auth,
    concerns,
    console,
    dashboard,
    display,
    exits,
    exports,
    fixes,
    live,
    mfa,
    stepout,
    supervise,
)

router = APIRouter(include_in_schema=False)
for module in (
    auth,
    mfa,
    console,
    stepout,
    exits,
    fixes,
    amend,
    display,
    concerns,
    supervise,
    dashboard,
    exports,
    live,
):
    router.include_router(module.router)
