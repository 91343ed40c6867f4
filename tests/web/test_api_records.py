"""`POST /api/v1/records`: JSON Lines as `stepout import` takes them, all or nothing, into the
token's practice only."""

import orjson
import pytest

from stepout.web.api import uploads
from tests.web.conftest import Web
from tests.web.test_api_support import (
    SQLITE_ONLY,
    call,
    exit_line,
    import_records,
    jsonl,
    ok,
    session_line,
)

CONCERN = {
    "kind": "concern",
    "id": "k-1",
    "session": "s-1",
    "raised_at": "2026-02-02T11:30:00+00:00",
    "text": "Synthetic concern text.",
}


def test_import_then_reimport_is_a_no_op(web_any: Web) -> None:
    body = jsonl(session_line("s-1", billed_codes=["90834"]), exit_line("e-1", "s-1"), CONCERN)
    report = ok(import_records(web_any, body))
    assert report == {
        "lines": 3,
        "created": {"session": 1, "exit": 1, "concern": 1},
        "unchanged": 0,
    }
    again = ok(import_records(web_any, body))
    assert again == {"lines": 3, "created": {"session": 0, "exit": 0, "concern": 0}, "unchanged": 3}
    s = ok(call(web_any, "GET", "/sessions/s-1", "a-ther"))
    assert (s["gross_minutes"], s["net_minutes"], [x["id"] for x in s["exits"]]) == (
        55,
        52,
        ["e-1"],
    )


def test_one_bad_line_rejects_the_body_and_nothing_is_stored(web_any: Web) -> None:
    body = (
        jsonl(
            session_line("s-1"),
            exit_line("e-1", "s-1", left_at="2026-02-02T09:00:00+00:00"),  # before the start
            session_line("s-2", modality="hologram"),
        )
        + b"{not json\n"
    )
    r = import_records(web_any, body)
    assert r.status_code == 422
    assert r.json()["error"] == "import-rejected"
    errors = [(e["line"], e["field"]) for e in r.json()["errors"]]
    assert errors == [(2, "left_at"), (3, "modality"), (4, "json")]
    assert all(e["reason"] for e in r.json()["errors"])
    assert call(web_any, "GET", "/sessions/s-1", "a-ther").status_code == 404
    assert "Synthetic" not in r.text


@SQLITE_ONLY
def test_records_of_another_practice_are_refused_by_line(web_any: Web) -> None:
    body = jsonl(session_line("s-1"), session_line("s-b", practice="pb", therapist="b-ther"))
    r = import_records(web_any, body)
    assert r.status_code == 422
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(2, "practice")]
    assert "another practice" in r.json()["errors"][0]["reason"]
    assert call(web_any, "GET", "/sessions/s-1", "a-ther").status_code == 404  # nothing stored
    assert call(web_any, "GET", "/sessions/s-b", "b-ther").status_code == 404


def test_a_new_practice_cannot_be_made_through_the_api(web: Web) -> None:
    r = import_records(web, jsonl(session_line("s-x", practice="p-new")))
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(1, "practice")]
    with web.state.db.uow(read_only=True) as uow:
        assert uow.records.practice("p-new") is None


def test_an_exit_for_another_practices_stored_session_is_unknown(web_any: Web) -> None:
    ok(import_records(web_any, jsonl(session_line("s-b", practice="pb")), "b-admin"))
    body = jsonl(session_line("s-1"), exit_line("e-1", "s-b"), {**CONCERN, "session": "s-b"})
    r = import_records(web_any, body)
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(2, "session"), (3, "session")]
    assert errors[0]["reason"] == "session s-b is neither in the file nor stored"
    assert call(web_any, "GET", "/sessions/s-1", "a-ther").status_code == 404


def test_practice_errors_come_with_the_files_other_errors_in_line_order(web: Web) -> None:
    body = jsonl(
        session_line("s-b", practice="pb"),
        session_line("s-1", end="2026-02-02T09:00:00+00:00"),  # ends before it starts
    )
    r = import_records(web, body)
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(1, "practice"), (2, "end")]


def test_blank_lines_count_and_a_byte_order_mark_is_allowed(web: Web) -> None:
    body = b"\xef\xbb\xbf" + jsonl(session_line("s-1")) + b"\n" + jsonl(exit_line("e-1", "s-1"))
    report = ok(import_records(web, body))
    assert (report["lines"], report["created"]["exit"]) == (3, 1)


def test_text_plain_is_accepted_and_an_empty_body_imports_nothing(web: Web) -> None:
    body = jsonl(session_line("s-1"))
    r = call(
        web, "POST", "/records", "a-admin", content=body, headers={"Content-Type": "text/plain"}
    )
    assert ok(r)["created"]["session"] == 1
    empty = ok(import_records(web, b""))
    assert empty == {"lines": 0, "created": {"session": 0, "exit": 0, "concern": 0}, "unchanged": 0}


def test_json_is_not_json_lines(web: Web) -> None:
    r = call(web, "POST", "/records", "a-admin", json=[session_line("s-1")])
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported-media-type"


def test_a_body_over_the_cap_is_refused_with_413(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "MAX_BODY", 1000)
    line = orjson.dumps(session_line("s-1")) + b"\n"
    r = import_records(web, line * 20)
    assert r.status_code == 413
    assert r.json()["error"] == "body-too-large"
    assert call(web, "GET", "/sessions/s-1", "a-ther").status_code == 404


def test_a_streamed_body_over_the_cap_is_refused_too(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "MAX_BODY", 1000)
    line = orjson.dumps(session_line("s-1")) + b"\n"

    def chunks():  # no Content-Length: the cap is checked as the body arrives
        for _ in range(20):
            yield line

    headers = {"Content-Type": "application/x-ndjson"}
    r = call(web, "POST", "/records", "a-admin", content=chunks(), headers=headers)
    assert r.status_code == 413


def test_the_default_cap_is_64_mib() -> None:
    assert uploads.MAX_BODY == 64 * 1024 * 1024


NOT_ADMINS = ["a-super", "a-ther", "a-bill"]


def test_only_an_admin_imports(web: Web) -> None:
    for username in NOT_ADMINS:
        r = import_records(web, jsonl(session_line("s-1")), username)
        assert r.status_code == 403, username
    assert call(web, "GET", "/sessions/s-1", "a-super").status_code == 404


def test_an_imported_sensor_exit_reads_back(web: Web) -> None:
    body = jsonl(
        session_line("s-1"),
        exit_line("e-1", "s-1", source="sensor", reason=None, explanation=None, safeguards=[]),
    )
    ok(import_records(web, body))
    x = ok(call(web, "GET", "/exits/e-1", "a-ther"))
    assert (x["source"], x["reason"], x["returned_at"]) == (
        "sensor",
        None,
        "2026-02-02T10:23:00+00:00",
    )
