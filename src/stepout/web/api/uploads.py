"""Reading an uploaded file's body (records, a FHIR Bundle): of an accepted media type, and no
larger than `MAX_BODY`, refused before it is all read when it says it is larger."""

from collections.abc import Set
from typing import Final

from fastapi import Request, status
from fastapi.responses import JSONResponse

MAX_BODY: Final = 64 * 1024 * 1024


class UploadRefused(Exception):
    """The body is not taken; `response` says why (415 or 413)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(code)
        self.response = JSONResponse({"error": code, "message": message}, status_code)


async def read_upload(
    request: Request, media_types: Set[str], *, send_as: str, split_hint: str
) -> bytes:
    """The body, or `UploadRefused`: `send_as` tells what to send instead of another media
    type, `split_hint` how to send less than `MAX_BODY`."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in media_types:
        raise UploadRefused(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", send_as
        )
    too_large = UploadRefused(
        status.HTTP_413_CONTENT_TOO_LARGE,
        "body-too-large",
        f"The body is over {MAX_BODY // (1024 * 1024)} MiB; {split_hint}",
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
