"""`POST /records`: import JSON Lines, as `stepout import` does (all or nothing), into the
caller's practice only: a token belongs to one practice, so a record of another practice (a
session naming it, or an exit or concern of a stored session of another) rejects the file
(see `import_records`' `practice`)."""

import io
from typing import Any, Final

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepout.services.audit import audit_import
from stepout.services.importing import import_records
from stepout.web import audit
from stepout.web.security import ApiUser, State, require
from stepout.web.state import AppState

router = APIRouter(tags=["records"])

MAX_BODY: Final = 64 * 1024 * 1024
MEDIA_TYPES: Final = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/json-lines", "text/plain"}
)


class _Refused(Exception):
    def __init__(self, status_code: int, code: str, message: str) -> None:
        self.response = JSONResponse({"error": code, "message": message}, status_code)


def run_import(state: AppState, body: bytes, practice: str, actor: str) -> dict[str, Any]:
    """The import, with its audit record in its transaction (a rejected one is recorded as
    failed, on its own)."""
    caller = audit.current().caller
    try:
        with state.db.uow() as uow:
            told = audit_import(uow, caller)
            report = import_records(
                uow, io.BytesIO(body), actor=actor, practice=practice, progress=told
            )
    except Exception as error:
        audit.record_failed_import(state, error)
        raise
    audit.current().recorded = True
    created = {kind: n for kind, n in report.created.items() if kind != "practice"}
    return {"lines": report.lines, "created": created, "unchanged": report.unchanged}


async def _body(request: Request) -> bytes:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise _Refused(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send JSON Lines as application/x-ndjson (or text/plain).",
        )
    too_large = _Refused(
        status.HTTP_413_CONTENT_TOO_LARGE,
        "body-too-large",
        f"The body is over {MAX_BODY // (1024 * 1024)} MiB; split the file and send each part.",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise too_large
    return bytes(body)


_JSONL_BODY: Final = {
    "required": True,
    "content": {
        media: {"schema": {"type": "string", "description": "One JSON record per line."}}
        for media in ("application/x-ndjson", "text/plain")
    },
}


@router.post(
    "/records",
    openapi_extra={"requestBody": _JSONL_BODY},
    responses={
        413: {"description": "The body is over 64 MiB."},
        415: {"description": "Not JSON Lines."},
        422: {"description": "Rejected, nothing stored: `errors` lists line, field, reason."},
    },
)
async def import_(request: Request, user: ApiUser, state: State) -> Any:
    """Import records (admins): one bad line rejects the whole body and nothing is stored.
    Answers the lines read, the records created per kind and those already stored alike."""
    require(user, "records.import")
    try:
        body = await _body(request)
    except _Refused as refused:
        return refused.response
    return await run_in_threadpool(run_import, state, body, user.practice, user.id)
