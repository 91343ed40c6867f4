"""Attack 6(b): schemathesis against the API's own OpenAPI schema, in-process.

For every operation of `/api/v1/openapi.json`, schemathesis generates requests from the schema
(valid ones, and ones that break it) and each is sent through the app object (no network): with
a valid credential of a role the matrix lets in (its path ids half the time replaced by real
ids of the practice, so that requests reach the records) the answer is never a server error and
a refusal has the API's error body; the same request without a credential, and with a wrong
one, is refused with 401.

`STEPOUT_FUZZ_EXAMPLES` sets the examples per operation (25 by default: the short run of CI);
the long run is the same test with a larger number, e.g. `STEPOUT_FUZZ_EXAMPLES=1000`.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from stepout.domain.permissions import ACCESS_KINDS, PUBLIC, ROOM_DISPLAY, ROUTES, roles_for
from stepout.services import credentials
from tests.web.attack_support import API, ROLES, Records, key, make_records
from tests.web.conftest import Web, make_web

EXAMPLES: Final = int(os.environ.get("STEPOUT_FUZZ_EXAMPLES", "25"))
OPERATIONS: Final = sorted(
    route for route, access in ROUTES.items() if route.split()[1].startswith(API)
    and access != PUBLIC
)  # fmt: skip
PREFERRED: Final = ("therapist", "supervisor", "admin", "biller")
STREAM: Final = "GET /api/v1/rooms/{room}/display/events"


class Fuzzed:
    """The app on SQLite with practice pa's records, and the requests sent so far."""

    def __init__(self, web: Web, records: Records) -> None:
        self.web = web
        self.records = records
        self.schema = schemathesis.openapi.from_dict(web.app.openapi())
        self.sent = 0

    def operation(self, route: str) -> Any:
        for found in self.schema.get_all_operations():
            op = found.ok()
            if key(op.method.upper(), op.path) == route:
                return op
        raise AssertionError(f"{route} is not in the OpenAPI schema")

    def credential(self, route: str) -> dict[str, str]:
        access = ROUTES[route]
        if access == ROOM_DISPLAY:
            return {"Authorization": f"Bearer {self.web.a.room_tokens['room-1']}"}
        allowed = roles_for(access)
        if not allowed:  # no staff role's: an integration's (`presence.report`)
            return self._integration()
        role = next(r for r in PREFERRED if r in allowed)
        return self.web.a.auth(f"a-{ROLES[role]}")

    def _integration(self) -> dict[str, str]:
        made = self.web.a
        if "a-video" not in made.tokens:
            self.web.state.accounts.add_user("a-video", made.id, "integration", None)
            made.tokens["a-video"] = self.web.state.accounts.create_api_token("a-video")[1]
        return made.auth("a-video")

    def real_ids(self, route: str, case: Case) -> None:
        """Half the time (by the generated value's length), a real id of the practice."""
        for name, value in list((case.path_parameters or {}).items()):
            if route == STREAM:  # a room's own stream never ends: keep to other rooms
                if value == "room-1":
                    case.path_parameters[name] = "room-9"
                continue
            ids = self.records.ids(name) or (["room-1"] if name == "room" else [])
            if ids and len(str(value)) % 2 == 0:
                case.path_parameters[name] = ids[len(str(value)) % len(ids)]

    def send(self, case: Case, headers: dict[str, str]) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url="http://127.0.0.1")
        sent_headers = {
            k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"
        }
        self.sent += 1
        return self.web.client.request(
            kwargs["method"],
            kwargs["url"],
            headers={**sent_headers, **headers},
            params=kwargs.get("params"),
            content=_content(kwargs),
            cookies=None,
        )


def _content(kwargs: dict[str, Any]) -> bytes | None:
    """The body as the requests transport would send it."""
    import json

    if "json" in kwargs and kwargs["json"] is not None:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes):
        return data
    if data is not None:
        return json.dumps(data).encode()
    return None


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:  # quick hashes, as the web fixtures use
        quick = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        patch.setattr(credentials, "_hasher", quick)
        patch.setattr(credentials, "_DUMMY_HASH", quick.hash("synthetic-stand-in"))
        for web in make_web(f"sqlite:///{tmp / 'stepout.db'}", tmp):
            yield Fuzzed(web, make_records(web, web.a, "a"))
    print(f"\nschemathesis: {fuzzed_total[0]} requests over {len(OPERATIONS)} operations")


fuzzed_total = [0]


def test_the_schema_has_every_operation_of_the_matrix(fuzzed: Fuzzed) -> None:
    in_schema = {
        key(op.ok().method.upper(), op.ok().path) for op in fuzzed.schema.get_all_operations()
    }
    assert in_schema == set(OPERATIONS)
    assert all(ROUTES[route] not in ACCESS_KINDS - {ROOM_DISPLAY} for route in OPERATIONS)


@pytest.mark.parametrize("route", OPERATIONS)
def test_no_request_makes_the_api_fail_and_none_passes_without_a_credential(
    fuzzed: Fuzzed, route: str
) -> None:
    op = fuzzed.operation(route)
    valid = fuzzed.credential(route)
    wrong = {"Authorization": "Bearer " + ("st_" if route != STREAM else "sr_") + "0" * 43}
    cases = st.one_of(
        op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: Case) -> None:
        fuzzed.real_ids(route, case)
        r = fuzzed.send(case, valid)
        assert r.status_code < 500, (route, case.path_parameters, case.query, r.text[:300])
        if r.status_code >= 400:
            assert {"error", "message"} <= set(r.json()), r.text[:300]
        for headers in ({}, wrong):
            refused = fuzzed.send(case, headers)
            assert refused.status_code == 401, (route, headers, refused.text[:300])
            assert refused.json()["error"] == "unauthorized"

    before = fuzzed.sent
    run()
    fuzzed_total[0] += fuzzed.sent - before
    assert fuzzed.sent > before
