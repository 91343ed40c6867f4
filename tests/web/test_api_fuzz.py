"""No input makes the API answer 5xx: every JSON-taking operation gets arbitrary JSON and
near-miss bodies (the right fields with values of the wrong kind), on real ids of a session and
an exit in progress, as a therapist and as a supervisor. Each answer is a 2xx or a 4xx with
the API's error body."""

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.conftest import Web
from tests.web.test_api_support import API, call, start, step_out

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "client", "room", "modality", "billed_codes", "reason", "reason_note", "explanation",
    "client_informed", "safeguards", "expected_minutes", "client_attended_by", "ems", "ems_note",
    "checked_in", "safeguard", "note", "changes",
]  # fmt: skip
NEAR_MISS = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6)


def json_operations(web: Web) -> list[tuple[str, str]]:
    """(method, path template) of every operation that is not a GET and not the import."""
    found = []
    for path, operations in web.app.openapi()["paths"].items():
        for method in operations:
            if method != "get" and not path.endswith("/records"):
                found.append((method.upper(), path))
    return found


def _concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x-1"), path)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_body_makes_the_api_fail(web: Web, data: st.DataObject) -> None:
    if not hasattr(web, "_fuzz_ids"):
        session = start(web)["id"]
        exit_id = step_out(web, session)["id"]
        web._fuzz_ids = {"session_id": session, "exit_id": exit_id, "concern_id": "k-1"}  # type: ignore[attr-defined]
    ids: dict[str, str] = web._fuzz_ids  # type: ignore[attr-defined]
    method, path = data.draw(st.sampled_from(json_operations(web)))
    body: Any = data.draw(NEAR_MISS | JSON)
    user = data.draw(st.sampled_from(["a-ther", "a-super", "b-ther"]))
    r = call(web, method, _concrete(path, ids)[len(API) :], user, json=body)
    assert r.status_code < 500, (method, path, body, r.text)
    if r.status_code >= 400:
        assert set(r.json()) >= {"error", "message"}, r.text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.binary(max_size=60)
        | JSON.map(lambda v: repr(v).encode())
        | NEAR_MISS.map(lambda d: repr(d).encode()),
        max_size=5,
    )
)
def test_no_import_body_makes_the_api_fail(web: Web, lines: list[bytes]) -> None:
    r = call(
        web,
        "POST",
        "/records",
        "a-admin",
        content=b"\n".join(lines),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code < 500, r.text
    assert r.status_code in (200, 422), r.text


QUERY = st.dictionaries(
    st.sampled_from(["from", "to", "rule", "severity", "therapist", "as_of", "limit", "offset"]),
    st.text(max_size=25),
    max_size=4,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=QUERY, user=st.sampled_from(["a-ther", "a-super", "a-bill"]))
def test_no_findings_query_makes_the_api_fail(web: Web, query: dict[str, str], user: str) -> None:
    r = call(web, "GET", "/findings", user, params=query)
    assert r.status_code < 500, (query, r.text)
