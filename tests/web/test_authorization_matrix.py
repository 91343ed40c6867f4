"""The authorization matrix covers every route and every command, and every route answers each
role as the matrix says.

`domain/permissions.py` names what each route needs (`ROUTES`: an operation of the role matrix,
or a kind of credential that is not a role: public, a room display's token, a concern link...)
and lists the command line's commands (the operator's). A route or a command missing from it,
or listed and gone, fails here. Then each route is called by each role (its API token on the
API, its signed-in browser on the pages), by a room display's token and by nobody: a role the
matrix lets in is answered (not 401, 403 or 404, not sent to sign in), the others are refused
as today (403 for a role without the operation, 401 or the sign-in page without a credential).
"""

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from fastapi import FastAPI

from stepout.adapters.db import tenancy
from stepout.cli import app as cli_app
from stepout.domain.accounts import User
from stepout.domain.permissions import (
    ACCESS_KINDS,
    CONCERN_LINK,
    OPERATIONS,
    OPERATOR_COMMANDS,
    PUBLIC,
    ROOM_DISPLAY,
    ROUTES,
    SIGNED_IN,
    SIGNING_IN,
    operations_of,
    roles_for,
)
from stepout.web.security import ApiUser, PageSession
from tests.web.attack_support import (
    API,
    ROLES,
    STREAMS,
    Caller,
    Records,
    api_caller,
    app_routes,
    fill,
    key,
    make_records,
    nobody,
    open_stream,
    page_caller,
    room_caller,
)
from tests.web.conftest import Web


def _commands(command: Any, ctx: Any, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            yield from _commands(command.get_command(ctx, name), ctx, (*prefix, name))
    else:
        yield " ".join(prefix)


def test_every_route_is_in_the_matrix(web: Web) -> None:
    routes = {key(method, path) for method, path in app_routes(web.app)}
    assert sorted(routes - ROUTES.keys()) == [], "routes that name no access in ROUTES"
    assert sorted(ROUTES.keys() - routes) == [], "ROUTES lists routes the app no longer has"


def test_every_route_needs_operations_of_the_matrix_or_a_credential() -> None:
    for route, access in ROUTES.items():
        needs = (access,) if isinstance(access, str) else access
        assert needs, route
        for need in needs:
            assert need in OPERATIONS or need in ACCESS_KINDS, (route, need)


def test_every_command_is_the_operators() -> None:
    import click

    root = typer.main.get_command(cli_app)
    commands = set(_commands(root, click.Context(root)))  # type: ignore[arg-type]
    assert sorted(commands - OPERATOR_COMMANDS) == [], "commands not in OPERATOR_COMMANDS"
    assert sorted(OPERATOR_COMMANDS - commands) == [], "OPERATOR_COMMANDS lists gone commands"


# -- Each route, each role.


class Matrix:
    """Practice pa's records, and a caller of each kind."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.records: Records = make_records(web, web.a, "a")
        self.api = {role: api_caller(web, web.a, f"a-{name}") for role, name in ROLES.items()}
        self.pages = {role: page_caller(web, f"a-{name}") for role, name in ROLES.items()}
        self.room = room_caller(web, "room-1", web.a.room_tokens["room-1"])
        self.nobody = nobody(web)
        self.tried = 0

    def values(self) -> dict[str, str]:
        """The path parameters: pa's ended session and its exit and concern, room-1, and the
        concern link's code of the session."""
        rec = self.records
        code = rec.concern_links[0].rsplit("/", 1)[1]
        return {
            "session_id": rec.sessions[0],
            "exit_id": rec.exits[0],
            "concern_id": rec.concerns[0],
            "key": rec.findings[0],
            "room": "room-1",
            "code": code,
        }

    def call(self, caller: Caller, method: str, path: str) -> tuple[int, str, str]:
        """(status, where a redirect goes, body) of the route called by `caller`."""
        self.tried += 1
        url = fill(path, self.values())
        if path in STREAMS:
            status, headers, body = open_stream(self.web.app, caller, url)
            return status, headers.get("location", ""), body.decode(errors="replace")
        r = caller.send(method, url)
        return r.status_code, r.headers.get("location", ""), r.text


@pytest.fixture
def matrix(web: Web) -> Matrix:
    return Matrix(web)


def _sent_to_sign_in(status: int, location: str) -> bool:
    return status == 303 and location.startswith("/login")


def test_each_route_answers_each_role_as_the_matrix_says(matrix: Matrix) -> None:
    wrong: list[str] = []
    routes = [r for r in app_routes(matrix.web.app) if key(*r) != "POST /logout"]
    for method, path in routes:
        access = ROUTES[key(method, path)]
        is_api = path.startswith(API)
        for outcome in _check_route(matrix, method, path, access, is_api):
            wrong.append(f"{method} {path}: {outcome}")
    assert wrong == []
    # Signing out: any signed-in browser, last (it ends the browser's session).
    assert _sent_to_sign_in(*matrix.call(matrix.nobody, "POST", "/logout")[:2])
    status, location, _ = matrix.call(matrix.pages["biller"], "POST", "/logout")
    assert (status, location) == (303, "/login")
    assert _sent_to_sign_in(*matrix.call(matrix.pages["biller"], "GET", "/supervise")[:2])
    print(f"authorization matrix: {matrix.tried} requests")


def _check_route(
    matrix: Matrix, method: str, path: str, access: Any, is_api: bool
) -> Iterator[str]:
    kinds = set((access,) if isinstance(access, str) else access) & ACCESS_KINDS
    staff = matrix.api if is_api else matrix.pages
    if not kinds:
        allowed = roles_for(access)
        assert operations_of(access)
        for role, caller in staff.items():
            status, location, _ = matrix.call(caller, method, path)
            if role in allowed:
                if status in (401, 403, 404) or status >= 500 or _sent_to_sign_in(status, location):
                    yield f"{role} is allowed but got {status} {location}"
            elif status != 403:
                yield f"{role} is not allowed but got {status} {location}"
        for caller in (matrix.room, matrix.nobody):
            status, location, _ = matrix.call(caller, method, path)
            refused = status == 401 if is_api else _sent_to_sign_in(status, location)
            if not refused:
                yield f"{caller.name} got {status} {location}"
        return
    (kind,) = kinds
    if kind == ROOM_DISPLAY:
        status, _, _ = matrix.call(matrix.room, method, path)
        if status != 200:
            yield f"the room's own display token got {status}"
        for caller in (*staff.values(), matrix.nobody):
            status, _, _ = matrix.call(caller, method, path)
            if status != 401:
                yield f"{caller.name} got {status}"
    elif kind == CONCERN_LINK:
        for caller in (matrix.nobody, matrix.pages["therapist"]):
            status, _, _ = matrix.call(caller, method, path)
            if method == "GET" and status != 200:
                yield f"{caller.name} with the link got {status}"
            if method == "POST" and status != 403:  # no form token: "the form had expired"
                yield f"{caller.name} posting without the form got {status}"
        wrong_code = path.replace("{code}", "0" * 32)
        status, _, _ = matrix.call(matrix.nobody, method, wrong_code)
        if status != 404:
            yield f"a wrong code got {status}"
    elif kind == PUBLIC:
        status, _, _ = matrix.call(matrix.nobody, method, path)
        if status >= 400 and not (method == "POST" and status in (401, 403)):
            yield f"nobody got {status}"
    elif kind == SIGNING_IN:
        status, _, _ = matrix.call(matrix.nobody, method, path)
        if 200 <= status < 300 or status >= 500:
            yield f"a browser that gave no password got {status}"
    elif kind == SIGNED_IN:
        raise AssertionError("checked apart: signing out ends the caller's session")


# -- The scope each request runs in.


def _scope_routes(app: FastAPI) -> None:
    """Routes that answer the tenant scope they run in (sync: on a worker thread; async)."""

    def sync_probe(user: ApiUser) -> dict[str, str]:
        return {"user": user.practice, "scope": repr(tenancy.current())}

    async def async_probe(user: ApiUser) -> dict[str, str]:
        return {"user": user.practice, "scope": repr(tenancy.current())}

    def page_probe(session: PageSession) -> dict[str, str]:
        return {"user": session.user.practice, "scope": repr(tenancy.current())}

    def no_credential() -> dict[str, str]:
        return {"scope": repr(tenancy.current())}

    app.add_api_route("/_scope/sync", sync_probe)
    app.add_api_route("/_scope/async", async_probe)
    app.add_api_route("/_scope/page", page_probe)
    app.add_api_route("/_scope/none", no_credential)


def test_each_request_runs_in_its_callers_practice(web: Web) -> None:
    """The async dependencies enter the caller's practice; FastAPI runs a sync endpoint on a
    worker thread with a copy of the request's context, so it sees the same scope. A request
    with no credential has none, although this process (the tests') defaults to ALL."""
    _scope_routes(web.app)
    assert tenancy.current() is tenancy.ALL  # the tests' own default
    for path in ("/_scope/sync", "/_scope/async"):
        for practice, user in (("pa", "a-ther"), ("pb", "b-bill")):
            made = web.practices[practice]
            got = web.client.get(path, headers=made.auth(user)).json()
            assert got == {"user": practice, "scope": repr(practice)}
    caller = page_caller(web, "b-super")
    assert caller.client.get("/_scope/page").json() == {"user": "pb", "scope": "'pb'"}
    assert web.client.get("/_scope/none").json() == {"scope": "None"}


def test_a_handler_that_never_learns_the_practice_reads_nothing(web: Web) -> None:
    """Fail closed: a route with no credential that opens a unit of work is refused by the
    storage itself (here: an error, which the server answers as a 500)."""

    def careless() -> dict[str, Any]:
        with web.state.db.uow(read_only=True) as uow:
            return {"practice": str(uow.records.practice("pa"))}

    web.app.add_api_route("/_careless", careless)
    with pytest.raises(tenancy.NoTenantScope):
        web.client.get("/_careless")


def test_the_matrix_refuses_a_disabled_account() -> None:
    from stepout.domain.permissions import allowed

    user = User("u-1", "pa", "someone", "admin", disabled=True)
    assert not any(allowed(user, operation) for operation in OPERATIONS)
