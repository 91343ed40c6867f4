"""Importing JSON Lines into a store: all or nothing, every error reported, references
resolved across the file and the store, re-imports idempotent, new records as ledger events."""

from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from stepout.adapters.memory import MemoryState, MemoryUnitOfWork
from stepout.domain.events import Event
from stepout.domain.instants import parse_instant
from stepout.domain.practice import Practice
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.validation import LineError
from stepout.services import importing
from stepout.services.importing import ImportRejected, ImportReport, import_records

T = parse_instant


def session(id: str = "s1", **changes: Any) -> dict[str, Any]:
    return {
        "kind": "session",
        "id": id,
        "practice": "p1",
        "therapist": "t-007",
        "client": "client-0042",
        "room": "r1",
        "modality": "in_person",
        "start": "2026-11-03T09:00:00-05:00",
        "end": "2026-11-03T09:53:00-05:00",
        "billed_codes": ["90837"],
        **changes,
    }


def exit_(id: str = "e1", session: str = "s1", **changes: Any) -> dict[str, Any]:
    return {
        "kind": "exit",
        "id": id,
        "session": session,
        "source": "declared",
        "left_at": "2026-11-03T09:20:00-05:00",
        **changes,
    }


def concern(id: str = "k1", session: str = "s1", **changes: Any) -> dict[str, Any]:
    return {
        "kind": "concern",
        "id": id,
        "session": session,
        "raised_at": "2026-11-04T08:00:00-05:00",
        "text": "The session was interrupted and we ran out of time.",
        **changes,
    }


def jsonl(*records: dict[str, Any] | str) -> list[bytes]:
    """One line per record; a str is written as the raw line."""
    return [(r.encode() if isinstance(r, str) else orjson.dumps(r)) + b"\n" for r in records]


class RecordingLedger:
    """Wraps a ledger to see each append."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.batches: list[list[Event]] = []

    def append(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))
        self.inner.append(events)

    @property
    def events(self) -> list[Event]:
        return [e for batch in self.batches for e in batch]


def run(
    state: MemoryState, lines: list[bytes], **options: Any
) -> tuple[ImportReport, RecordingLedger]:
    with MemoryUnitOfWork(state) as uow:
        ledger = RecordingLedger(uow.ledger)
        uow.ledger = ledger  # type: ignore[assignment]
        return import_records(uow, lines, **options), ledger


def rejected(state: MemoryState, lines: list[bytes], **options: Any) -> list[LineError]:
    before = (list(state.events), dict(state.records))
    uow = MemoryUnitOfWork(state)
    with pytest.raises(ImportRejected) as caught, uow:
        import_records(uow, lines, **options)
    assert not uow.committed
    assert (state.events, state.records) == before
    return caught.value.errors


def messages(errors: list[LineError]) -> list[str]:
    return [str(e) for e in errors]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "CHUNK_SIZE", 2)


# -- a good file ----------------------------------------------------------------------------


def test_a_good_file_becomes_events_and_records_and_is_committed() -> None:
    state = MemoryState()
    report, _ = run(state, jsonl(session(), exit_(), concern()))
    assert report == ImportReport(
        lines=3, created={"session": 1, "exit": 1, "concern": 1, "practice": 1}, unchanged=0
    )
    assert [(e.kind, e.subject, e.practice) for e in state.events] == [
        ("practice.created", "p1", "p1"),
        ("session.recorded", "s1", "p1"),
        ("exit.recorded", "e1", "p1"),
        ("concern.recorded", "k1", "p1"),
    ]
    assert state.records[("practice", "p1")] == Practice("p1", "p1", "UTC")
    assert state.records[("session", "s1")] == Session(
        "s1",
        "p1",
        "t-007",
        "client-0042",
        "r1",
        "in_person",
        T("2026-11-03T14:00:00Z"),
        T("2026-11-03T14:53:00Z"),
        ("90837",),
    )
    assert state.records[("exit", "e1")] == Exit("e1", "s1", "declared", T("2026-11-03T14:20Z"))
    assert state.records[("concern", "k1")] == Concern(
        "k1", "s1", T("2026-11-04T13:00Z"), "The session was interrupted and we ran out of time."
    )


def test_an_event_holds_the_normalised_record_at_its_own_instant() -> None:
    state = MemoryState()
    run(state, jsonl(session(), exit_(), concern()), actor="admin-1")
    practice, s, x, k = state.events
    assert practice.data == {"name": "p1", "timezone": "UTC"}
    assert s.data == {key: v for key, v in session().items() if key not in ("kind", "id")}
    assert s.at == T("2026-11-03T09:00:00-05:00")
    assert x.at == T("2026-11-03T09:20:00-05:00")
    assert k.at == T("2026-11-04T08:00:00-05:00")
    assert x.data["client_informed"] == "not_informed"
    assert x.data["safeguards"] == []
    assert "id" not in x.data
    assert "kind" not in x.data
    assert {e.actor for e in state.events} == {"admin-1"}


def test_blank_lines_are_skipped_but_counted() -> None:
    state = MemoryState()
    lines = [b"\n", *jsonl(session()), b"   \r\n", b"", *jsonl(exit_(left_at="x"))]
    errors = rejected(state, lines)
    assert messages(errors) == ["line 5: left_at: not an ISO 8601 timestamp"]


def test_a_byte_order_mark_on_the_first_line_is_ignored() -> None:
    state = MemoryState()
    lines = jsonl(session())
    report, _ = run(state, [b"\xef\xbb\xbf" + lines[0]])
    assert report.created["session"] == 1


def test_each_practice_is_created_once_before_its_first_session() -> None:
    state = MemoryState()
    lines = jsonl(session("s1"), session("s2", practice="p2"), session("s3"), session("s4"))
    report, _ = run(state, lines)
    assert [(e.kind, e.subject) for e in state.events] == [
        ("practice.created", "p1"),
        ("session.recorded", "s1"),
        ("practice.created", "p2"),
        ("session.recorded", "s2"),
        ("session.recorded", "s3"),
        ("session.recorded", "s4"),
    ]
    assert report.created["practice"] == 2


def test_a_stored_practice_is_not_created_again() -> None:
    state = MemoryState()
    run(state, jsonl(session("s1")))
    report, ledger = run(state, jsonl(session("s2")))
    assert [e.kind for e in ledger.events] == ["session.recorded"]
    assert report.created["practice"] == 0


def test_each_chunk_is_appended_at_once(small_chunks: None) -> None:
    state = MemoryState()
    lines = jsonl(*(session(f"s{i}") for i in range(5)))
    progress: list[int] = []
    _, ledger = run(state, lines, progress=progress.append)
    assert [len(b) for b in ledger.batches] == [3, 2, 1]  # the practice joins the first
    assert progress == [2, 4, 5]


def test_an_empty_file_imports_nothing() -> None:
    state = MemoryState()
    report, _ = run(state, [b"\n"])
    assert report == ImportReport(
        lines=1, created={"session": 0, "exit": 0, "concern": 0, "practice": 0}, unchanged=0
    )


# -- references -----------------------------------------------------------------------------


@pytest.mark.usefixtures("small_chunks")
def test_an_exit_or_concern_may_come_before_its_session() -> None:
    state = MemoryState()
    lines = jsonl(exit_("e1", "s9"), concern("k1", "s9"), session("s1"), exit_("e2"), session("s9"))
    report, _ = run(state, lines)
    assert report.created == {"session": 2, "exit": 2, "concern": 1, "practice": 1}
    order = [e.subject for e in state.events]
    assert order.index("s9") < order.index("e1")
    assert order.index("s9") < order.index("k1")
    assert order.index("s1") < order.index("e2")


def test_an_exit_may_name_a_session_later_in_the_same_chunk() -> None:
    state = MemoryState()
    report, _ = run(state, jsonl(exit_(), session()))
    assert [e.kind for e in state.events] == [
        "practice.created",
        "session.recorded",
        "exit.recorded",
    ]
    assert report.created["exit"] == 1


def test_an_exit_or_concern_may_name_a_stored_session() -> None:
    state = MemoryState()
    run(state, jsonl(session(practice="p7")))
    report, ledger = run(state, jsonl(exit_(), concern()))
    assert [(e.kind, e.practice) for e in ledger.events] == [
        ("exit.recorded", "p7"),
        ("concern.recorded", "p7"),
    ]
    assert report.created == {"session": 0, "exit": 1, "concern": 1, "practice": 0}


def test_a_session_in_neither_the_file_nor_the_store_is_an_error() -> None:
    errors = rejected(MemoryState(), jsonl(session(), exit_("e1", "s2"), concern("k1", "s3")))
    assert messages(errors) == [
        "line 2: session: session s2 is neither in the file nor stored",
        "line 3: session: session s3 is neither in the file nor stored",
    ]


def test_a_reference_to_a_session_line_with_errors_adds_no_error() -> None:
    errors = rejected(MemoryState(), jsonl(session(modality="remote"), exit_(), concern()))
    assert [(e.line, e.field) for e in errors] == [(1, "modality")]


@pytest.mark.parametrize(
    ("left_at", "problem"),
    [
        ("2026-11-03T08:59:59-05:00", "is before the start of session s1"),
        ("2026-11-03T14:53:00.000001+00:00", "is after the end of session s1"),
    ],
)
@pytest.mark.parametrize("stored", [False, True])
def test_an_exit_must_leave_inside_its_session(left_at: str, problem: str, stored: bool) -> None:
    state = MemoryState()
    lines = jsonl(exit_(left_at=left_at))
    if stored:
        run(state, jsonl(session()))
    else:
        lines = jsonl(session()) + lines
    errors = rejected(state, lines)
    assert messages(errors) == [f"line {len(lines)}: left_at: {problem}"]


def test_an_exit_may_leave_at_the_start_or_at_the_end_of_its_session() -> None:
    lines = jsonl(
        session(),
        exit_("e1", left_at="2026-11-03T14:00:00Z"),
        exit_("e2", left_at="2026-11-03T09:53:00-05:00"),
    )
    report, _ = run(MemoryState(), lines)
    assert report.created["exit"] == 2


def test_an_exit_of_a_stored_session_in_progress_has_no_end_bound() -> None:
    state = MemoryState()
    with MemoryUnitOfWork(state) as uow:
        data = {k: v for k, v in session().items() if k not in ("kind", "id", "end")}
        uow.ledger.append(
            [
                Event("practice.created", "p1", "p1", 0, {"name": "p1"}),
                Event("session.started", "p1", "s1", T(data["start"]), data),
            ]
        )
        uow.commit()
    report, _ = run(state, jsonl(exit_(left_at="2026-11-03T23:00:00-05:00")))
    assert report.created["exit"] == 1


# -- duplicates and existing records ------------------------------------------------------


def test_ids_are_unique_per_kind_within_the_file(small_chunks: None) -> None:
    lines = jsonl(session(), exit_(), session(), exit_(), exit_("s1"), concern(), concern())
    errors = rejected(MemoryState(), lines)
    assert messages(errors) == [
        "line 3: id: session s1 is also on line 1",
        "line 4: id: exit e1 is also on line 2",
        "line 7: id: concern k1 is also on line 6",
    ]


def full_file() -> list[bytes]:
    return jsonl(
        session(),
        session("s2", practice="p2", billed_codes=[]),
        exit_(
            reason="technical",
            returned_at="2026-11-03T09:23:00-05:00",
            client_informed="before_leaving",
            explanation="Stepping out to fix the video link.",
            safeguards=["records_secured", "screen_locked", "door_closed"],
            checked_in=True,
            signed_at="2026-11-03T10:05:00-05:00",
        ),
        concern(acknowledged_at=None),
    )


def test_re_importing_a_file_changes_nothing() -> None:
    state = MemoryState()
    run(state, full_file())
    before = (list(state.events), dict(state.records))
    report, ledger = run(state, full_file())
    assert report == ImportReport(
        lines=4, created={"session": 0, "exit": 0, "concern": 0, "practice": 0}, unchanged=4
    )
    assert ledger.batches == []
    assert (state.events, state.records) == before


def test_re_importing_ignores_key_order_omitted_defaults_and_offsets() -> None:
    state = MemoryState()
    run(state, full_file())
    same = [
        dict(reversed(list(session(start="2026-11-03T14:00:00Z").items()))),
        {k: v for k, v in session("s2", practice="p2").items() if k != "billed_codes"},
        exit_(
            left_at="2026-11-03T15:50:00+01:30",
            reason="technical",
            returned_at="2026-11-03T14:23:00.000000+00:00",
            client_informed="before_leaving",
            explanation="Stepping out to fix the video link.",
            safeguards=["door_closed", "screen_locked", "records_secured", "door_closed"],
            checked_in=True,
            signed_at="2026-11-03T15:05:00Z",
            ems=None,
        ),
        concern(),
    ]
    report, ledger = run(state, jsonl(*same))
    assert report.unchanged == 4
    assert ledger.batches == []


def test_a_live_only_field_of_a_stored_exit_does_not_make_it_differ() -> None:
    state = MemoryState()
    run(state, jsonl(session()))
    with MemoryUnitOfWork(state) as uow:
        data = {
            "session": "s1",
            "source": "declared",
            "reason": "technical",
            "reason_note": None,
            "left_at": "2026-11-03T09:20:00-05:00",
            "expected_minutes": 5,
        }
        uow.ledger.append([Event("exit.declared", "p1", "e1", T("2026-11-03T14:20Z"), data)])
        uow.commit()
    report, _ = run(state, jsonl(exit_(reason="technical")))
    assert report.unchanged == 1


@pytest.mark.parametrize(
    ("line", "kind", "id"),
    [
        (session(room="r2"), "session", "s1"),
        (exit_(returned_at="2026-11-03T09:23:00-05:00"), "exit", "e1"),
        (exit_(left_at="2026-11-03T09:20:01-05:00"), "exit", "e1"),
        (concern(text="Another concern."), "concern", "k1"),
    ],
)
def test_an_existing_id_with_other_values_rejects_the_file(
    line: dict[str, Any], kind: str, id: str
) -> None:
    state = MemoryState()
    run(state, jsonl(session(), exit_(), concern()))
    errors = rejected(state, jsonl(session("s5"), line))
    assert messages(errors) == [
        f"line 2: id: {kind} {id} already exists with other values; amend it instead"
    ]


# -- all or nothing -----------------------------------------------------------------------


def test_a_bad_last_line_stores_nothing_not_even_practices(small_chunks: None) -> None:
    state = MemoryState()
    lines = jsonl(*(session(f"s{i}", practice=f"p{i}") for i in range(5)), "{not json")
    assert messages(rejected(state, lines)) == [
        "line 6: json: unexpected character, expected a string key at column 2"
    ]
    assert state.events == []
    assert state.records == {}


def test_nothing_more_is_appended_after_the_first_error(small_chunks: None) -> None:
    state = MemoryState()
    lines = jsonl(session("s1"), session("s2"), session("s3", end="x"), *map(session, "abcd"))
    uow = MemoryUnitOfWork(state)
    with uow:
        ledger = RecordingLedger(uow.ledger)
        uow.ledger = ledger  # type: ignore[assignment]
        with pytest.raises(ImportRejected):
            import_records(uow, lines)
    assert [e.subject for e in ledger.events] == ["p1", "s1", "s2"]
    assert not uow.committed


def test_all_errors_are_reported_in_line_order(small_chunks: None) -> None:
    lines = jsonl(
        exit_("e1", "s404"),
        session(),
        "[1, 2",
        session("s2", modality="remote", end="2026-11-03T08:00:00-05:00"),
        {"kind": "visit"},
        exit_("e2", left_at="2026-11-03T08:00:00-05:00"),
        session(),
        concern(raised_at=None),
    )
    errors = rejected(MemoryState(), lines)
    assert messages(errors) == [
        "line 1: session: session s404 is neither in the file nor stored",
        "line 3: json: unexpected end of data at column 6",
        "line 4: modality: must be one of in_person, telehealth",
        "line 4: end: is not after start",
        "line 5: kind: must be one of session, exit, concern",
        "line 6: left_at: is before the start of session s1",
        "line 7: id: session s1 is also on line 2",
        "line 8: raised_at: must be an ISO 8601 timestamp with an offset",
    ]


def test_the_rejection_names_the_count_and_the_first_errors() -> None:
    lines = jsonl(*(session(f"s{i}", room="") for i in range(25)))
    with pytest.raises(ImportRejected) as caught, MemoryUnitOfWork() as uow:
        import_records(uow, lines)
    text = str(caught.value)
    assert text.startswith("import rejected, 25 errors, nothing stored:\nline 1: room: ")
    assert "line 20: room" in text
    assert "line 21: room" not in text
    assert text.endswith("... and 5 more")
    assert len(caught.value.errors) == 25


def test_an_error_never_repeats_the_free_text_of_a_line() -> None:
    secret = "Stepping out to fix the video link."
    lines = jsonl(
        session(),
        {**exit_(explanation=[secret], reason_note=7), secret: 1},
        concern(text=None),
        f'{{"kind":"concern","text":"{secret}",',
    )
    for error in rejected(MemoryState(), lines):
        assert "video link" not in str(error)


# -- one practice only (the API: a token belongs to one practice) --------------------------


def test_an_import_for_one_practice_refuses_a_session_of_another() -> None:
    errors = rejected(
        MemoryState(),
        jsonl(session("s1"), session("s2", practice="p2"), exit_("e2", "s2")),
        practice="p1",
    )
    assert messages(errors) == [
        "line 2: practice: is another practice; this import takes practice p1 only"
    ]


def test_an_import_for_one_practice_does_not_reach_another_practices_stored_session() -> None:
    state = MemoryState()
    run(state, jsonl(session("s9", practice="p2")))
    errors = rejected(state, jsonl(exit_("e1", "s9"), concern("k1", "s9")), practice="p1")
    assert messages(errors) == [
        "line 1: session: session s9 is neither in the file nor stored",
        "line 2: session: session s9 is neither in the file nor stored",
    ]


def test_an_import_for_its_own_practice_goes_through() -> None:
    state = MemoryState()
    run(state, jsonl(session("s1")))
    report, _ = run(state, jsonl(exit_("e1", "s1"), session("s2")), practice="p1")
    assert report.created == {"session": 1, "exit": 1, "concern": 0, "practice": 0}
