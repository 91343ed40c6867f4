"""How refusals reach API clients: JSON with a stable code, the field and the reason; never a
500 for bad input, never a stored value echoed back (it may be health data)."""

from typing import Any, Final
from urllib.parse import quote

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from stepout.domain.events import EvolveError
from stepout.domain.protocol import ProtocolError
from stepout.services.accounts import AccountError
from stepout.services.importing import ImportRejected
from stepout.web import audit
from stepout.web.security import LoginRequired, refused_credential

MAX_LISTED: Final = 1000
INPUT_CODES: Final = frozenset(
    {"missing-value", "invalid-value", "no-changes", "field-not-amendable"}
)


def protocol_status(error: ProtocolError) -> int:
    """404 for a record not found, 422 for a bad value, 409 for a refused transition."""
    if error.code == "not-found":
        return status.HTTP_404_NOT_FOUND
    if error.code in INPUT_CODES or error.code.startswith("unknown-"):
        return status.HTTP_422_UNPROCESSABLE_CONTENT
    return status.HTTP_409_CONFLICT


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith("/api/") and (refused := await refused_credential(request)):
        return await _http(request, refused)  # a credential first, then the input
    errors = [{"field": _field(tuple(e["loc"])), "reason": e["msg"]} for e in exc.errors()]
    return JSONResponse(
        {"error": "invalid-request", "message": "The request is not valid.", "errors": errors},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _protocol(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtocolError)
    return JSONResponse(
        {"error": exc.code, "message": exc.message}, status_code=protocol_status(exc)
    )


async def _rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ImportRejected)
    errors = [{"line": e.line, "field": e.field, "reason": e.message} for e in exc.errors]
    body = {
        "error": "import-rejected",
        "message": f"{len(errors)} errors; nothing was stored.",
        "errors": errors[:MAX_LISTED],
    }
    return JSONResponse(
        body,
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _not_applied(request: Request, exc: Exception) -> Response:
    """Storage refused the events (behind row-level security, an id another practice took:
    the importer cannot see it to say so). The message names no record."""
    return JSONResponse(
        {"error": "conflict", "message": "The records do not apply to what is stored (an id "
         "may be taken); nothing was stored."},
        status_code=status.HTTP_409_CONFLICT,
    )  # fmt: skip


async def _account(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": "invalid-request", "message": str(exc)},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    audit.login_required()
    target = f"/login?next={quote(exc.next_path)}"
    if request.headers.get("HX-Request") == "true":
        # An htmx request would swap the login page into a panel: send the whole page there.
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"HX-Redirect": target})
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


HTTP_CODES: Final = {
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    415: "unsupported-media-type",
}


async def _http(request: Request, exc: Exception) -> Response:
    """API refusals in the API's shape; everything else as Starlette answers it."""
    assert isinstance(exc, StarletteHTTPException)
    if not request.url.path.startswith("/api/"):
        return await http_exception_handler(request, exc)
    if exc.status_code == status.HTTP_400_BAD_REQUEST:  # a body FastAPI could not parse
        exc = await refused_credential(request) or exc  # a credential first, then the input
    body = {"error": HTTP_CODES.get(exc.status_code, "error"), "message": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ProtocolError, _protocol)
    app.add_exception_handler(ImportRejected, _rejected)
    app.add_exception_handler(AccountError, _account)
    app.add_exception_handler(EvolveError, _not_applied)
    app.add_exception_handler(LoginRequired, _login)
