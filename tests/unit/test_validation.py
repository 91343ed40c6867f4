"""Checking one interchange record on its own: required fields, types, choices, timestamps,
defaults, and error messages that name the line and field but never repeat free text."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepout.domain.validation import LineError, check_record, kinds, validate_record

SECRET = "Stepping out to fix the video link."

SESSION: dict[str, Any] = {
    "kind": "session",
    "id": "s1",
    "practice": "p1",
    "therapist": "t-007",
    "client": "client-0042",
    "room": "r1",
    "modality": "telehealth",
    "start": "2026-11-03T09:00:00-05:00",
    "end": "2026-11-03T09:53:00-05:00",
    "billed_codes": ["90837"],
}
EXIT: dict[str, Any] = {
    "kind": "exit",
    "id": "e1",
    "session": "s1",
    "source": "declared",
    "reason": "technical",
    "reason_note": SECRET,
    "left_at": "2026-11-03T09:20:00-05:00",
    "returned_at": "2026-11-03T09:23:00-05:00",
    "client_informed": "before_leaving",
    "explanation": SECRET,
    "safeguards": ["records_secured", "screen_locked", "door_closed"],
    "client_attended_by": SECRET,
    "ems": None,
    "checked_in": True,
    "signed_at": "2026-11-03T10:05:00-05:00",
}
CONCERN: dict[str, Any] = {
    "kind": "concern",
    "id": "k1",
    "session": "s1",
    "raised_at": "2026-11-04T08:00:00-05:00",
    "text": SECRET,
    "acknowledged_at": None,
}
BASE = {"session": SESSION, "exit": EXIT, "concern": CONCERN}
_DROP = object()


def with_(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**record, **changes}
    return {k: v for k, v in out.items() if v is not _DROP}


def errors_of(obj: object, line: int = 7) -> list[LineError]:
    record, errors = validate_record(obj, line)
    assert record is None
    assert errors
    return errors


@pytest.mark.parametrize("kind", ["session", "exit", "concern"])
def test_a_complete_record_is_returned_as_given(kind: str) -> None:
    record, errors = validate_record(BASE[kind], 1)
    assert errors == []
    expected = dict(BASE[kind])
    if kind == "exit":  # safeguards are a set: written sorted, as an export writes them
        expected["safeguards"] = sorted(expected["safeguards"])
    assert record == expected


def test_omitted_optional_exit_fields_take_their_defaults() -> None:
    minimal = {
        "kind": "exit",
        "id": "e1",
        "session": "s1",
        "source": "sensor",
        "left_at": "2026-11-03T09:20:00Z",
    }
    record, errors = validate_record(minimal, 1)
    assert errors == []
    assert record == {
        **minimal,
        "reason": None,
        "reason_note": None,
        "returned_at": None,
        "client_informed": "not_informed",
        "explanation": None,
        "safeguards": [],
        "client_attended_by": None,
        "ems": None,
        "checked_in": False,
        "signed_at": None,
    }


def test_omitted_billed_codes_and_acknowledgement_take_their_defaults() -> None:
    session, errors = validate_record(with_(SESSION, billed_codes=_DROP), 1)
    assert errors == []
    assert session is not None
    assert session["billed_codes"] == []
    concern, errors = validate_record(with_(CONCERN, acknowledged_at=_DROP), 1)
    assert errors == []
    assert concern is not None
    assert concern["acknowledged_at"] is None


def test_the_normalised_record_lists_fields_in_the_interchange_order() -> None:
    shuffled = dict(reversed(list(EXIT.items())))
    record, _ = validate_record(shuffled, 1)
    assert record is not None
    assert list(record) == list(EXIT)


def test_safeguards_are_normalised_to_a_sorted_set() -> None:
    record, errors = validate_record(
        with_(EXIT, safeguards=["screen_locked", "door_closed", "screen_locked"]), 1
    )
    assert errors == []
    assert record is not None
    assert record["safeguards"] == ["door_closed", "screen_locked"]


def test_a_repeated_billed_code_is_kept_as_another_unit() -> None:
    record, errors = validate_record(with_(SESSION, billed_codes=["90839", "90840", "90840"]), 1)
    assert errors == []
    assert record is not None
    assert record["billed_codes"] == ["90839", "90840", "90840"]


def test_an_exit_may_return_at_the_instant_it_left() -> None:
    record, errors = validate_record(with_(EXIT, returned_at=EXIT["left_at"]), 1)
    assert errors == []
    assert record is not None


def test_the_input_is_not_changed() -> None:
    given_ = with_(EXIT, safeguards=["screen_locked", "door_closed"])
    copy = {**given_, "safeguards": list(given_["safeguards"])}
    validate_record(given_, 1)
    assert given_ == copy


def test_an_error_reads_line_field_and_problem() -> None:
    assert str(LineError(7, "returned_at", "is before left_at")) == (
        "line 7: returned_at: is before left_at"
    )


NOT_AN_OBJECT = [[1, 2], "session", 3, None, True]


@pytest.mark.parametrize("value", NOT_AN_OBJECT)
def test_a_line_that_is_not_an_object_is_rejected(value: object) -> None:
    assert errors_of(value) == [LineError(7, "json", "must be a JSON object")]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": "s1"}, "is required"),
        ({"kind": "visit", "id": "s1"}, "must be one of session, exit, concern"),
        ({"kind": ["session"], "id": "s1"}, "must be one of session, exit, concern"),
        ({"kind": None}, "must be one of session, exit, concern"),
    ],
)
def test_the_kind_must_be_session_exit_or_concern(record: object, message: str) -> None:
    assert errors_of(record) == [LineError(7, "kind", message)]


# (kind, field, bad value or _DROP, message)
CASES = [
    *[
        ("session", f, _DROP, "is required")
        for f in ("id", "practice", "therapist", "client", "room", "modality", "start", "end")
    ],
    *[("exit", f, _DROP, "is required") for f in ("id", "session", "source", "left_at")],
    *[("concern", f, _DROP, "is required") for f in ("id", "session", "raised_at", "text")],
    ("session", "id", "", "must be a non-empty string"),
    ("session", "id", 17, "must be a non-empty string"),
    ("session", "practice", None, "must be a non-empty string"),
    ("session", "room", ["r1"], "must be a non-empty string"),
    ("exit", "session", "", "must be a non-empty string"),
    ("concern", "id", {"a": 1}, "must be a non-empty string"),
    ("session", "modality", "remote", "must be one of in_person, telehealth"),
    ("session", "modality", ["telehealth"], "must be one of in_person, telehealth"),
    ("session", "modality", None, "must be one of in_person, telehealth"),
    ("session", "start", "2026-11-03T09:00:00", "timestamp has no UTC offset"),
    ("session", "start", "2026-11-03", "timestamp has no UTC offset"),
    ("session", "start", "next Tuesday", "not an ISO 8601 timestamp"),
    ("session", "start", 1_700_000_000, "must be an ISO 8601 timestamp with an offset"),
    ("session", "end", None, "must be an ISO 8601 timestamp with an offset"),
    ("session", "end", "2026-11-03T09:00:00-05:00", "is not after start"),
    ("session", "end", "2026-11-03T08:59:00-05:00", "is not after start"),
    ("session", "end", "0001-01-01T00:00:00+05:00", "is out of range"),
    ("session", "billed_codes", "90837", "must be a list"),
    ("session", "billed_codes", None, "must be a list"),
    ("session", "billed_codes", ["90837", "99213"], "item 2 is not a known CPT code"),
    ("session", "billed_codes", [90837], "item 1 is not a known CPT code"),
    ("session", "billed_codes", [["90837"]], "item 1 is not a known CPT code"),
    ("exit", "source", "camera", "must be one of declared, sensor"),
    ("exit", "source", {"x": 1}, "must be one of declared, sensor"),
    (
        "exit",
        "reason",
        "coffee",
        "must be one of technical, client_safety, health_emergency, other or null",
    ),
    (
        "exit",
        "reason",
        ["technical"],
        "must be one of technical, client_safety, health_emergency, other or null",
    ),
    ("exit", "reason_note", 5, "must be a string or null"),
    ("exit", "explanation", [SECRET], "must be a string or null"),
    ("exit", "client_attended_by", {"name": SECRET}, "must be a string or null"),
    ("exit", "left_at", "2026-11-03 09:20", "timestamp has no UTC offset"),
    ("exit", "returned_at", "2026-11-03T09:19:59-05:00", "is before left_at"),
    ("exit", "returned_at", "soon", "not an ISO 8601 timestamp"),
    ("exit", "returned_at", 3, "must be an ISO 8601 timestamp with an offset or null"),
    (
        "exit",
        "client_informed",
        None,
        "must be one of before_leaving, after_return, not_informed",
    ),
    (
        "exit",
        "client_informed",
        "told",
        "must be one of before_leaving, after_return, not_informed",
    ),
    ("exit", "safeguards", "door_closed", "must be a list"),
    (
        "exit",
        "safeguards",
        ["door_closed", "lights_off"],
        "item 2 must be one of records_secured, screen_locked, door_closed",
    ),
    ("exit", "ems", "maybe", "must be one of called, not_needed or null"),
    ("exit", "checked_in", "yes", "must be true or false"),
    ("exit", "checked_in", 1, "must be true or false"),
    ("exit", "checked_in", None, "must be true or false"),
    ("exit", "signed_at", "2026-11-03T10:05:00", "timestamp has no UTC offset"),
    ("concern", "text", None, "must be a string"),
    ("concern", "text", 12, "must be a string"),
    ("concern", "raised_at", "", "not an ISO 8601 timestamp"),
    ("concern", "acknowledged_at", "2026-13-01T00:00:00Z", "not an ISO 8601 timestamp"),
    ("concern", "acknowledged_at", False, "must be an ISO 8601 timestamp with an offset or null"),
]


@pytest.mark.parametrize(
    ("kind", "field", "value", "message"),
    CASES,
    ids=[f"{k}.{f}={v!r:.20}" for k, f, v, _ in CASES],
)
def test_each_problem_is_reported_with_its_line_and_field(
    kind: str, field: str, value: object, message: str
) -> None:
    errors = errors_of(with_(BASE[kind], **{field: value}), line=12)
    assert errors == [LineError(12, field, message)]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("session", "is not a session field"),
        ("exit", "is not an exit field"),
        ("concern", "is not a concern field"),
    ],
)
def test_an_unknown_field_is_rejected_by_name(kind: str, message: str) -> None:
    errors = errors_of(with_(BASE[kind], colour="blue"))
    assert errors == [LineError(7, "colour", message)]


def test_a_live_only_field_is_unknown_to_the_interchange() -> None:
    errors = errors_of(with_(EXIT, expected_minutes=5))
    assert [e.field for e in errors] == ["expected_minutes"]


def test_an_unknown_field_whose_name_is_free_text_is_not_repeated() -> None:
    errors = errors_of(with_(CONCERN, **{SECRET: True}))
    assert errors == [LineError(7, "?", "is not a concern field")]


def test_every_problem_of_a_record_is_reported() -> None:
    bad = with_(
        EXIT,
        id="",
        source="camera",
        returned_at="2026-11-03T09:00:00-05:00",
        checked_in="yes",
        mood="calm",
    )
    fields = [e.field for e in errors_of(bad)]
    assert sorted(fields) == sorted(["mood", "id", "source", "checked_in", "returned_at"])


def test_messages_never_repeat_free_text() -> None:
    bad_values: list[dict[str, Any]] = [
        with_(EXIT, reason_note=[SECRET], explanation={"t": SECRET}, client_attended_by=[SECRET]),
        with_(EXIT, reason=SECRET, source=SECRET, ems=SECRET, client_informed=SECRET),
        with_(EXIT, left_at=SECRET, returned_at=SECRET, signed_at=SECRET, safeguards=[SECRET]),
        with_(CONCERN, text=[SECRET], raised_at=SECRET, **{SECRET: SECRET}),
        with_(SESSION, id=[SECRET], modality=SECRET, billed_codes=[SECRET], start=SECRET),
    ]
    for record in bad_values:
        for error in errors_of(record):
            assert "video link" not in str(error)


# The fast path and the full check must agree on every record (the fast path only decides
# validity; the full check reports problems). Values mix valid, invalid and odd JSON values.
ODD_VALUES: st.SearchStrategy[object] = st.sampled_from(
    [None, "", "x", 0, 1, True, False, [], ["x"], {}, 1.5, "2026-11-03T09:00:00"]
)


def _variant(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    base = BASE[kind]
    names = [*sorted(set(base) - {"kind"}), "colour"]  # "colour" is an unknown field
    fields = st.dictionaries(st.sampled_from(names), ODD_VALUES, max_size=3)
    drops = st.sets(st.sampled_from(sorted(k for k in base if k != "kind")), max_size=2)
    return st.builds(
        lambda changes, dropped: {
            k: v for k, v in {**base, **changes}.items() if k not in dropped or k == "kind"
        },
        fields,
        drops,
    )


@given(st.one_of(_variant("session"), _variant("exit"), _variant("concern")))
def test_the_fast_path_and_the_full_check_agree(record: dict[str, Any]) -> None:
    fast_errors: list[LineError] = []
    fast = check_record(record, 3, fast_errors)
    full_errors: list[LineError] = []
    full_check = {
        "session": kinds._check_session_fully,
        "exit": kinds._check_exit_fully,
        "concern": kinds._check_concern_fully,
    }[record["kind"]]
    full = full_check(record, 3, full_errors)
    assert fast == full
    assert fast_errors == full_errors
    assert (fast is None) == bool(fast_errors)
