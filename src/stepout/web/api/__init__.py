"""The REST API under /api/v1: the same service-layer commands as the pages, for API tokens
(and, for a room's display, its room token)."""

from fastapi import APIRouter

from stepout.web.api import (
    amendments,
    concerns,
    display,
    exits,
    findings,
    records,
    reviews,
    sessions,
)

router = APIRouter()
for module in (sessions, exits, amendments, concerns, records, findings, reviews, display):
    router.include_router(module.router)
