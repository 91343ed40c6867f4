"""The request log: one JSON line per request (`stepout.logs`), with a request id.

The line names the route's template (`/api/v1/exits/{exit_id}`), never the URL: a path may
hold ids a caller typed and a query string may hold a room's token. It carries the method,
the status, the duration, the request id and what the credential said (user, practice, room,
bound by `stepout.web.audit.identify`). Bodies are never read here. The request id is also
sent back in `X-Request-ID`, so that a user's report can be matched with the line.
"""

import logging
import secrets
import time
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepout import logs

log = logging.getLogger("stepout.request")

UNMATCHED: Final = "(unmatched)"


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request, e.g. `/api/v1/exits/{exit_id}`;
    a mounted app's (the static files) as its prefix and `{path}`; `(unmatched)` when none
    did. A route included under a prefix knows its own part only: the prefix is what the
    request's path has before that part, filled in."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        if "endpoint" in scope and not scope.get("path_params"):
            return str(scope.get("path", ""))  # a plain route with no parameters: /healthz
        return UNMATCHED
    if getattr(route, "routes", None) is not None:  # a Mount
        return template.rstrip("/") + "/{path}"
    filled = template
    convertors = getattr(route, "param_convertors", {})
    for name, value in (scope.get("path_params") or {}).items():
        convertor = convertors.get(name)
        text = convertor.to_string(value) if convertor is not None else str(value)
        filled = filled.replace("{" + name + "}", text)
    path = str(scope.get("path", ""))
    if path.endswith(filled):
        return path[: len(path) - len(filled)] + template
    return template or "/"


class RequestLog:
    """ASGI middleware: binds a request id for every line logged during the request, and
    writes one `request` line when the response has been sent (or the handler failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = secrets.token_hex(8)
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        with logs.request_fields(request_id=request_id, method=scope.get("method")):
            try:
                await self.app(scope, receive, send_with_id)
            except BaseException:
                status = 500
                raise
            finally:
                if log.isEnabledFor(logging.INFO):
                    fields: dict[str, Any] = {
                        **logs.bound(),  # on the record itself: a handler may format it later
                        "route": route_template(scope),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                    log.info("request", extra=fields)
