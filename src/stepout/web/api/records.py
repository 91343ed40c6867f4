"""`POST /records`: import JSON Lines, as `stepout import` does (all or nothing), into the
caller's practice only: a token belongs to one practice, so a record of another practice (a
session naming it, or an exit or concern of a stored session of another) rejects the file."""

import io
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Final, Self

import orjson
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stepout.domain.validation import LineError
from stepout.services.importing import ImportRejected, import_records
from stepout.services.ports import Ledger, Records, UnitOfWork
from stepout.web.security import ApiUser, State, require
from stepout.web.state import AppState

router = APIRouter(tags=["records"])

MAX_BODY: Final = 64 * 1024 * 1024
MEDIA_TYPES: Final = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/json-lines", "text/plain"}
)
_BOM: Final = b"\xef\xbb\xbf"
_UNKNOWN_SESSION: Final = "session {} is neither in the file nor stored"


class _Refused(Exception):
    def __init__(self, status_code: int, code: str, message: str) -> None:
        self.response = JSONResponse({"error": code, "message": message}, status_code)


class PracticeGuard:
    """Watches the lines on their way to the importer for records of another practice."""

    def __init__(self, practice: str) -> None:
        self.practice = practice
        self.errors: list[LineError] = []
        self._sessions: set[str] = set()  # session ids of the file
        self._refs: list[tuple[int, str]] = []  # (line, session) of exits and concerns
        self._checked = False

    def lines(self, stream: Iterable[bytes]) -> Iterator[bytes]:
        for number, raw in enumerate(stream, 1):
            self._look(number, raw[len(_BOM) :] if number == 1 and raw.startswith(_BOM) else raw)
            yield raw

    def _look(self, number: int, raw: bytes) -> None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return  # blank, or the importer reports it
        if type(obj) is not dict:
            return
        kind = obj.get("kind")
        if kind == "session":
            if isinstance(obj.get("id"), str):
                self._sessions.add(obj["id"])
            practice = obj.get("practice")
            if isinstance(practice, str) and practice != self.practice:
                message = f"is another practice; this token imports only practice {self.practice}"
                self.errors.append(LineError(number, "practice", message))
        elif kind in ("exit", "concern") and isinstance(obj.get("session"), str):
            self._refs.append((number, obj["session"]))

    def check_stored(self, records: Records) -> list[LineError]:
        """After the last line: exits and concerns of stored sessions of another practice read
        as naming an unknown session (another practice's ids are not confirmed)."""
        if not self._checked:
            self._checked = True
            outside = {ref for _, ref in self._refs if ref not in self._sessions}
            stored = records.sessions(outside) if outside else {}
            for number, ref in self._refs:
                s = stored.get(ref)
                if s is not None and s.practice != self.practice:
                    self.errors.append(LineError(number, "session", _UNKNOWN_SESSION.format(ref)))
        return self.errors


class _GuardedUnitOfWork:
    """The caller's unit of work, whose commit first checks the practice guard."""

    def __init__(self, uow: UnitOfWork, guard: PracticeGuard) -> None:
        self._uow = uow
        self._guard = guard
        self.refusal: ImportRejected | None = None

    @property
    def records(self) -> Records:
        return self._uow.records

    @property
    def ledger(self) -> Ledger:
        return self._uow.ledger

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def commit(self) -> None:
        errors = self._guard.check_stored(self._uow.records)
        if errors:
            self.refusal = ImportRejected(sorted(errors, key=lambda e: e.line))
            raise self.refusal
        self._uow.commit()


def run_import(state: AppState, body: bytes, practice: str, actor: str) -> dict[str, Any]:
    guard = PracticeGuard(practice)
    with state.db.uow() as uow:
        guarded = _GuardedUnitOfWork(uow, guard)
        try:
            report = import_records(guarded, guard.lines(io.BytesIO(body)), actor=actor)
        except ImportRejected as rejected:
            if rejected is guarded.refusal:
                raise
            errors = [*rejected.errors, *guard.check_stored(uow.records)]
            raise ImportRejected(sorted(errors, key=lambda e: e.line)) from None
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
