"""Page routes answer in HTML: a refusal (403, 404, a bad form value, a protocol refusal the
handler did not show inline) is a plain page with the message, not the API's JSON."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from stepout.domain.protocol import ProtocolError
from stepout.web.errors import protocol_status
from stepout.web.pages.templating import render

TITLES = {
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    422: "Please check the form",
}


def error_page(request: Request, status_code: int, message: str) -> Response:
    title = TITLES.get(status_code, "Something went wrong")
    context = {"title": title, "message": message}
    return render(request, "error.html", context, status_code, embeddable=True)


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as e:
                return error_page(request, e.status_code, str(e.detail))
            except RequestValidationError:
                return error_page(request, 422, "Some of the form's values are not valid.")
            except ProtocolError as e:
                return error_page(request, protocol_status(e), e.message)

        return page_handler


def page_router() -> APIRouter:
    return APIRouter(route_class=PageRoute, include_in_schema=False)
