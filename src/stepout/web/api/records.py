"""`POST /records`: import JSON Lines, as `stepout import` does (all or nothing), into the
caller's practice only: a token belongs to one practice, so a record of another practice (a
session naming it, or an exit or concern of a stored session of another) rejects the file
(see `import_records`' `practice`)."""

import io
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from stepout.services.audit import audit_import
from stepout.services.importing import import_records
from stepout.web import audit
from stepout.web.api.uploads import UploadRefused, read_upload
from stepout.web.security import ApiUser, State, require
from stepout.web.state import AppState

router = APIRouter(tags=["records"])

MEDIA_TYPES: Final = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/json-lines", "text/plain"}
)


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
        body = await read_upload(
            request,
            MEDIA_TYPES,
            send_as="Send JSON Lines as application/x-ndjson (or text/plain).",
            split_hint="split the file and send each part.",
        )
    except UploadRefused as refused:
        return refused.response
    return await run_in_threadpool(run_import, state, body, user.practice, user.id)
