"""What the attack and authorization tests share: the app's routes as a table, one practice's
full records with a canary string in every free-text field, plausible requests for each route
(JSON for the API, forms with the CSRF token for the pages), callers of each kind (API token,
signed-in browser, room display token, nobody), a snapshot of everything a practice owns in the
database, and the search of an answer for what it must not contain. No tests here; every id,
name and text is synthetic."""

import asyncio
import re
import secrets
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

import httpx
import orjson
import psycopg
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from psycopg import errors, sql
from sqlalchemy import Table, select

from stepout.adapters.db import tenancy
from stepout.adapters.db.tables import Base
from stepout.domain.accounts import HelpText
from stepout.domain.commands import RaiseConcern
from stepout.web.links import concern_path
from tests.web.conftest import Practice, Web
from tests.web.pages_support import browser, login

API: Final = "/api/v1"
PARAM: Final = re.compile(r"\{(\w+)\}")
STREAMS: Final = frozenset({"/api/v1/rooms/{room}/display/events", "/console/events"})
ROLES: Final = {"admin": "admin", "supervisor": "super", "therapist": "ther", "biller": "bill"}


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every route of the app as (METHOD, path): a route that answers GET and HEAD is its GET;
    a mount (static files) and a bare ASGI route (health) are a GET of their path."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        assert path is not None, route
        methods = set(route.methods or {"GET"}) - {"HEAD"}
        found.update((method, path) for method in methods or {"GET"})
    return sorted(found, key=lambda r: (r[1], r[0]))


def key(method: str, path: str) -> str:
    return f"{method} {path}"


def params(path: str) -> list[str]:
    return PARAM.findall(path)


def fill(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], path)


def canary(practice: str, what: str) -> str:
    """A string found nowhere but in the field it was written to."""
    return f"CANARY {practice} {what} {secrets.token_hex(5)}"


@dataclass
class Records:
    """One practice's records, made through the API as its staff would, and the strings of
    them that another practice must never see."""

    practice: str
    sessions: list[str] = field(default_factory=list)  # [ended, in progress]
    exits: list[str] = field(default_factory=list)  # [of the ended, open in the other]
    concerns: list[str] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)  # room ids of this practice alone
    users: list[str] = field(default_factory=list)
    canaries: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # its API and room tokens
    concern_links: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # finding keys (hashes, not secrets)

    def ids(self, param: str) -> list[str]:
        """This practice's ids for a path parameter."""
        return {
            "session_id": self.sessions,
            "exit_id": self.exits,
            "concern_id": self.concerns,
            "room": self.rooms,
            "key": self.findings,
        }.get(param, [])

    def forbidden(self) -> list[str]:
        """What no answer to another practice may contain."""
        return [*self.canaries, *self.sessions, *self.exits, *self.concerns, *self.rooms,
                *self.users, *self.secrets]  # fmt: skip


def _api(web: Web, token: str, method: str, path: str, body: Any = None) -> Any:
    r = web.client.request(
        method, API + path, headers={"Authorization": f"Bearer {token}"}, json=body
    )
    assert r.status_code in (200, 201), (method, path, r.status_code, r.text)
    return r.json()


def make_records(web: Web, made: Practice, prefix: str) -> Records:
    """Full records for the practice `made` (whose accounts are `<prefix>-*`): its help texts
    and a room of its own with canary names; an ended session with an exit (other reason:
    note, explanation, who stayed), a concern and an amendment (with a note); a session in
    progress with an open exit and a concern. Every free text is a canary."""
    state = web.state
    p = made.id
    rec = Records(p)
    c = lambda what: _keep(rec, canary(p, what))  # noqa: E731
    state.accounts.set_help_text(p, HelpText(c("call button"), c("reception"), c("emergency")))
    room = f"{prefix}-garden-room"
    state.accounts.add_room(room, p, c("room name"))
    rec.rooms.append(room)
    rec.secrets.append(state.accounts.create_room_token(room, p)[1])
    rec.secrets.extend([*made.tokens.values(), *made.room_tokens.values()])
    rec.users.extend(made.tokens)  # usernames are the users' ids here
    ther, sup = made.tokens[f"{prefix}-ther"], made.tokens[f"{prefix}-super"]
    for n, in_progress in enumerate((False, True)):
        client = f"{prefix}-client-{secrets.token_hex(4)}"
        rec.canaries.append(client)
        s = _api(web, ther, "POST", "/sessions",
                 {"client": client, "room": room, "billed_codes": ["90834"]})["id"]  # fmt: skip
        rec.sessions.append(s)
        body = {
            "reason": "other" if n == 0 else "health_emergency",
            "reason_note": c(f"reason note {n}"),
            "explanation": c(f"explanation {n}"),
            "client_informed": True,
            "safeguards": ["records_secured", "screen_locked", "door_closed"],
            "expected_minutes": 5,
            "client_attended_by": c(f"attended by {n}"),
            "ems": "called" if n else None,
            "ems_note": c(f"ems note {n}") if n else None,
        }
        x = _api(web, ther, "POST", f"/sessions/{s}/exits", body)["id"]
        rec.exits.append(x)
        with tenancy.scope(p):
            concern = state.workflow.run(
                RaiseConcern(practice=p, session=s, text=c(f"concern {n}"))
            ).record
        rec.concerns.append(concern.id)
        rec.concern_links.append(concern_path(state.keys.link_key, s))
        if in_progress:
            continue
        _api(web, ther, "POST", f"/exits/{x}/return", {"checked_in": True})
        _api(web, ther, "POST", f"/exits/{x}/sign")
        _api(web, ther, "POST", f"/sessions/{s}/end")
        amended = {"changes": {"explanation": c("amended explanation")}, "note": c("note")}
        _api(web, sup, "POST", f"/exits/{x}/amend", amended)
        amended = {"changes": {"text": c("amended concern")}, "note": c("concern note")}
        _api(web, sup, "POST", f"/concerns/{concern.id}/amend", amended)
    rec.findings.extend(f["key"] for f in _api(web, sup, "GET", "/findings"))
    return rec


def _keep(rec: Records, value: str) -> str:
    rec.canaries.append(value)
    return value


# -- Requests: a plausible body for each route, so that a request reaches the deepest check.

ANY_ROOM: Final = "room-1"  # a room id both test practices have


def json_body(method: str, path: str, room: str = ANY_ROOM) -> Any:
    """A valid-looking JSON body for an API operation (None when it takes none)."""
    if method != "POST":
        return None
    last = path.rsplit("/", 1)[1]
    if "/findings/" in path:  # a finding's review
        return {"assignee": "a-ther"} if last == "assign" else {"note": "Synthetic note."}
    return {
        "sessions": {"client": "c-0001", "room": room, "billed_codes": ["90834"]},
        "exits": {
            "reason": "technical",
            "explanation": "Synthetic words.",
            "client_informed": True,
            "safeguards": ["records_secured"],
            "expected_minutes": 5,
        },
        "return": {"checked_in": True},
        "inform": {"client_informed": "after_return", "explanation": "Synthetic words."},
        "safeguards": {"safeguard": "door_closed"},
        "ems": {"ems": "not_needed", "note": "Synthetic note."},
        "attendant": {"client_attended_by": "Reception"},
        "classify": {"reason": "technical"},
        "amend": {"changes": _amendable(path), "note": "Synthetic correction."},
        "presence": {
            "session": "s-synthetic",
            "participant": "therapist",
            "event": "left",
            "at": "2026-03-02T15:00:00+00:00",
        },
    }.get(last)


def _amendable(path: str) -> dict[str, Any]:
    if "/concerns/" in path:
        return {"text": "Synthetic text."}
    if "/sessions/" in path:
        return {"modality": "telehealth"}
    return {"explanation": "Synthetic words."}


def form_body(method: str, path: str, csrf: str | None, room: str = ANY_ROOM) -> dict[str, Any]:
    """A valid-looking form for a page (with the browser's CSRF token, if any)."""
    if method != "POST":
        return {}
    last = path.rsplit("/", 1)[1]
    fields: dict[str, Any] = {
        "sessions": {"client": "c-0001", "room": room, "modality": "in_person"},
        "exits": {
            "reason": "technical",
            "explanation": "Synthetic words.",
            "told": "yes",
            "safeguards": ["records_secured"],
            "expected_minutes": "5",
        },
        "return": {"checked_in": "yes"},
        "inform": {"explanation": "Synthetic words.", "when": "after_return"},
        "safeguards": {"safeguard": "door_closed"},
        "ems": {"ems": "not_needed"},
        "attendant": {"attendant": "Reception"},
        "classify": {"reason": "technical"},
        "amend": {
            "note": "Synthetic correction.",
            "reason": "other",
            "reason_note": "Synthetic note.",
            "explanation": "Synthetic words.",
        },
        "login": {"username": "nobody", "password": "synthetic-wrong-1"},
    }.get(last, {})
    return {**fields, "csrf": csrf} if csrf is not None else fields


def query_for(path: str) -> dict[str, str]:
    """Query parameters a GET needs to reach its handler (the step-out form's reason)."""
    return {"reason": "technical"} if path.endswith("/step-out") else {}


# -- Callers: who sends a request.


@dataclass
class Caller:
    """An API token, a signed-in browser, a room display's token, or nobody."""

    name: str
    client: TestClient
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    csrf: str | None = None
    browser: bool = False

    def send(
        self,
        method: str,
        path: str,
        *,
        room: str = ANY_ROOM,
        query: dict[str, str] | None = None,
    ) -> httpx.Response:
        query = {**self.query, **query_for(path), **(query or {})}
        url = path + ("?" + urlencode(query) if query else "")
        if path.startswith(API):
            return self.client.request(
                method, url, headers=self.headers, json=json_body(method, path, room)
            )
        data = form_body(method, path, self.csrf, room)
        return self.client.request(
            method, url, headers=self.headers, data=data or None, follow_redirects=False
        )


def api_caller(web: Web, made: Practice, username: str) -> Caller:
    return Caller(f"API token of {username}", web.client, made.auth(username))


def page_caller(web: Web, username: str) -> Caller:
    client = browser(web)
    return Caller(f"browser of {username}", client, csrf=login(client, username), browser=True)


def room_caller(web: Web, room: str, token: str) -> Caller:
    """A room display's token: as `?token=` (pages) and as a Bearer header (API)."""
    return Caller(
        f"display token of {room}",
        web.client,
        headers={"Authorization": f"Bearer {token}"},
        query={"token": token},
    )


def nobody(web: Web) -> Caller:
    return Caller("nobody", browser(web))


# -- Streams: an event stream opened, its status and first bytes read, then disconnected.


def open_stream(app: FastAPI, caller: Caller, path: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, the first body bytes) of a GET that may answer an endless stream."""
    headers = [(k.lower().encode(), v.encode()) for k, v in caller.headers.items()]
    cookies = "; ".join(f"{k}={v}" for k, v in caller.client.cookies.items())
    if cookies:
        headers.append((b"cookie", cookies.encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": urlencode(caller.query).encode(),
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip

    async def run() -> tuple[int, dict[str, str], bytes]:
        got: dict[str, Any] = {"status": 0, "headers": {}, "body": b""}
        done = asyncio.Event()
        sent_request = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                got["status"] = message["status"]
                got["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                got["body"] += message.get("body", b"")
                if got["body"] or not message.get("more_body", False):
                    done.set()

        task = asyncio.ensure_future(app(scope, receive, send))
        await asyncio.wait_for(done.wait(), 10)
        task.cancel()  # a stream would go on: what it said first is enough
        await asyncio.gather(task, return_exceptions=True)
        return got["status"], got["headers"], got["body"]

    return asyncio.run(run())


# -- What a practice owns in the database, and what an answer holds.

_SKIPPED: Final = frozenset({"audit_log", "login_failures"})  # no practice's own rows


def owned_rows(web: Web, records: Records) -> dict[str, list[tuple[str, ...]]]:
    """Every row the practice owns, table by table (its ledger entries too), as text."""
    p = records.practice
    metadata = Base.metadata
    users = select(metadata.tables["users"].c.id).where(metadata.tables["users"].c.practice == p)
    subjects = [*records.sessions, *records.exits, *records.concerns]
    out: dict[str, list[tuple[str, ...]]] = {}
    with web.state.db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            where = _owned(table, p, users, subjects)
            if table.name in _SKIPPED or where is None:
                continue
            rows = conn.execute(select(table).where(where)).all()
            out[table.name] = sorted(tuple(map(str, r)) for r in rows)
        conn.rollback()
    return out


def _owned(table: Table, practice: str, users: Any, subjects: list[str]) -> Any:
    c = table.c
    if table.name == "practices":
        return c.id == practice
    if table.name == "amendments":
        return c.subject.in_(subjects)
    if "practice" in c:
        return c.practice == practice
    if "user" in c:
        return c.user.in_(users)
    return None


def found_in(response: httpx.Response, forbidden: Iterable[str]) -> list[str]:
    """The forbidden strings in the response's body or headers."""
    text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return [s for s in forbidden if s in text]


def jsonl(*records: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


# -- A role that row-level security applies to (PostgreSQL's superusers pass every policy).

PROBE: Final = "stepout_rls_probe"
APPEND_ONLY: Final = ("events", "audit_log")


def grant_probe(admin_conninfo: str, database: str) -> str:
    """The non-superuser role `stepout_rls_probe` (made once per server, by whoever comes
    first), granted the tables of `database` as an application role would be: the four verbs
    on every table, less UPDATE and DELETE on the append-only chains. Returns its conninfo."""
    with (
        psycopg.connect(admin_conninfo, autocommit=True) as admin,
        suppress(errors.DuplicateObject, errors.UniqueViolation),  # made at the same moment
    ):
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB").format(
                sql.Identifier(PROBE)
            )
        )
    base = admin_conninfo.rsplit("/", 1)[0]
    role = sql.Identifier(PROBE)
    with psycopg.connect(f"{base}/{database}", autocommit=True) as owner:
        owner.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role)
        )
        owner.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        owner.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(role)
        )
        for table in APPEND_ONLY:
            owner.execute(
                sql.SQL("REVOKE UPDATE, DELETE ON {} FROM {}").format(sql.Identifier(table), role)
            )
    scheme, rest = base.split("://", 1)
    host = rest.rsplit("@", 1)[-1]
    return f"{scheme}://{PROBE}@{host}/{database}"
