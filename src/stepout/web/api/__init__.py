"""The REST API under /api/v1: the same service-layer commands as the pages, for API tokens."""

from fastapi import APIRouter

from stepout.web.api import sessions

router = APIRouter()
for module in (sessions,):
    router.include_router(module.router)
