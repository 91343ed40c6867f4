"""FHIR over the API (docs/fhir.md).

`GET /fhir/Bundle`: the caller's practice as a FHIR Bundle (type `collection`), with the
filters of `stepout export fhir`; a therapist gets their own sessions (and the findings about
them). Recorded as a read of health data (`fhir.export`, with the count of resources) before
it is sent. The Bundle is built in memory: for a large practice, ask for a period, or run
`stepout export fhir`, which streams.

`POST /fhir/Bundle`: import the finished Encounters of a Bundle as sessions of the caller's
practice, as `stepout import fhir` does (all or nothing; admins), recorded as a
`records.import`."""

import io
from datetime import date
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepout.domain.instants import InstantError, parse_instant
from stepout.services.audit import audit_import, span_target
from stepout.services.fhir import BundleRejected, export_fhir, import_fhir
from stepout.services.ports import Selection
from stepout.web import audit
from stepout.web.api.schemas import bad_input
from stepout.web.api.uploads import UploadRefused, read_upload
from stepout.web.audit import record_read
from stepout.web.security import ApiUser, State, require
from stepout.web.state import AppState

router = APIRouter(tags=["fhir"])

MEDIA_TYPE: Final = "application/fhir+json"
MEDIA_TYPES: Final = frozenset({MEDIA_TYPE, "application/json"})
MAX_LISTED: Final = 1000


@router.get(
    "/fhir/Bundle",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "A FHIR Bundle (JSON)."}},
)
def bundle(
    user: ApiUser,
    state: State,
    release: Annotated[Literal["r5", "r4b"], Query(description="FHIR release.")] = "r5",
    date_from: Annotated[
        date | None, Query(alias="from", description="First session date, inclusive.")
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="Last session date, inclusive.")
    ] = None,
    as_of: Annotated[
        str | None,
        Query(description="Judge findings at this ISO 8601 time with an offset (default: now)."),
    ] = None,
) -> Response:
    """Encounters, what clients were told, health emergencies and the audit's findings."""
    require(user, "session.read")
    require(user, "findings.read")
    if date_from and date_to and date_to < date_from:
        raise bad_input("to", "is before from")
    instant = state.now() if as_of is None else _instant(as_of)
    therapist = user.id if user.role == "therapist" else None
    selection = Selection(
        date_from=date_from, date_to=date_to, practice=user.practice, therapist=therapist
    )
    out = io.BytesIO()
    with state.db.uow(read_only=True) as uow:
        count = export_fhir(uow.records, selection, state.policy, instant, release, out)
    record_read(state, "fhir.export", span_target(date_from, date_to), count=count)
    return Response(out.getvalue(), media_type=MEDIA_TYPE)


def _instant(text: str) -> int:
    try:
        return parse_instant(text)
    except InstantError as e:
        raise bad_input("as_of", f"{e}; expected like 2026-11-30T18:00:00+00:00") from None


@router.post(
    "/fhir/Bundle",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "object", "description": "A FHIR Bundle."}}
                for media in sorted(MEDIA_TYPES)
            },
        }
    },
    responses={
        413: {"description": "The body is over 64 MiB."},
        415: {"description": "Not FHIR JSON."},
        422: {"description": "Rejected, nothing stored: `errors` lists entry, field, reason."},
    },
)
async def import_bundle(request: Request, user: ApiUser, state: State) -> Any:
    """Import the finished Encounters of a Bundle as sessions of the caller's practice
    (admins): one bad Encounter rejects the whole Bundle and nothing is stored. An Encounter
    that names an Organization must name this practice. Answers the release read, the
    Encounters read, the sessions created, those already stored alike, and the Encounters
    skipped (not finished)."""
    require(user, "records.import")
    try:
        body = await read_upload(
            request,
            MEDIA_TYPES,
            send_as="Send a FHIR Bundle as application/fhir+json.",
            split_hint="send a month at a time.",
        )
    except UploadRefused as refused:
        return refused.response
    return await run_in_threadpool(_import, state, body, user.practice, user.id)


def _import(state: AppState, body: bytes, practice: str, actor: str) -> Any:
    """The import, with its audit record in its transaction (a rejected one is recorded as
    failed, on its own)."""
    caller = audit.current().caller
    try:
        with state.db.uow() as uow:
            told = audit_import(uow, caller)
            report = import_fhir(uow, body, only_practice=practice, actor=actor, progress=told)
    except BundleRejected as rejected:
        audit.record_failed_import(state, rejected)
        errors = [
            {"entry": e.entry, "field": e.field, "reason": e.message} for e in rejected.errors
        ]
        return JSONResponse(
            {
                "error": "import-rejected",
                "message": f"{len(errors)} errors; nothing was stored.",
                "errors": errors[:MAX_LISTED],
            },
            status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    except Exception as error:
        audit.record_failed_import(state, error)
        raise
    audit.current().recorded = True
    return {
        "release": report.release,
        "encounters": report.encounters,
        "created": report.created,
        "unchanged": report.unchanged,
        "skipped": report.skipped,
    }
