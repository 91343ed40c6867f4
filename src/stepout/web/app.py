"""The web app: the therapist's console and the room displays (pages), and the REST API under
/api/v1. `create_app` wires it to the settings; `stepout serve` runs it with uvicorn."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stepout import __version__
from stepout.bootstrap import effective_policy, open_database
from stepout.config import Settings
from stepout.domain.instants import now
from stepout.services.accounts import AccountService
from stepout.services.workflow import Clock, Workflow
from stepout.web import errors
from stepout.web.api import fhir as fhir_api
from stepout.web.api import presence as presence_api
from stepout.web.api import router as api_router
from stepout.web.audit import AuditRequests
from stepout.web.live import Hub, LocalNotifier, Notifier, PostgresNotifier
from stepout.web.pages import router as pages_router
from stepout.web.requestlog import RequestLog
from stepout.web.security import TenantSeal, credential_units
from stepout.web.state import AppState

STATIC: Final = Path(__file__).parent / "static"
THREADS: Final = 12  # for the sync handlers and the display streams' reads


def create_app(settings: Settings | None = None, *, clock: Clock = now) -> FastAPI:
    settings = settings or Settings()
    db = open_database(settings)
    hub = Hub()
    notifier: Notifier
    if db.dialect == "postgresql":
        dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        notifier = PostgresNotifier(hub, dsn)
    else:
        notifier = LocalNotifier(hub)
    state = AppState(
        settings=settings,
        db=db,
        workflow=Workflow(db.uow, clock),
        accounts=AccountService(credential_units(db), clock, keys=db.keys),
        policy=effective_policy(settings),
        hub=hub,
        notifier=notifier,
        keys=db.keys,
        clock=clock,
    )

    presence = presence_api.presence_services(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Writes queue for one lock anyway: a few threads serve them as fast as forty, and
        # forty only queue longer for the GIL.
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        hub.bind(asyncio.get_running_loop())
        notifier.start()
        presence.start()
        try:
            yield
        finally:
            presence.stop()
            notifier.stop()
            db.dispose()

    app = FastAPI(
        title="Stepout",
        version=__version__,
        summary="Record, guide and audit the moments a therapist leaves the session.",
        docs_url=None,  # served below from the package's own copy of Swagger UI
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    app.state.stepout = state
    state.presence = presence  # exits nobody declared (web/api/presence.py)
    app.router.routes.append(Route("/healthz", _Health(), include_in_schema=False))
    errors.install(app)
    app.add_middleware(TenantSeal)  # every request starts with no practice scope
    app.add_middleware(AuditRequests)  # who and from where; refusals recorded (web/audit.py)
    app.add_middleware(RequestLog)  # one JSON line per request, outermost (web/requestlog.py)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(fhir_api.router, prefix="/api/v1")
    app.include_router(presence_api.router, prefix="/api/v1")
    app.add_api_route("/api/docs", _api_docs, include_in_schema=False)
    app.include_router(pages_router)
    return app


SWAGGER: Final = "/static/vendor/swagger-ui"


def _api_docs() -> HTMLResponse:
    """The OpenAPI documentation, with no request beyond this server (no CDN)."""
    return get_swagger_ui_html(
        openapi_url="/api/v1/openapi.json",
        title="Stepout API",
        swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER}/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
    )


class _Health:
    """A bare ASGI endpoint for load balancers (and the benchmark's baseline): no database.
    (An instance, not a function: Starlette routes to it as a raw ASGI app.)"""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})


def app_from_env() -> FastAPI:
    """The app for the settings in the environment (`uvicorn --factory`, one per worker)."""
    return create_app(Settings())
