"""Exporting every stored record as JSON Lines, and the round trip: importing an export into an
empty store gives the same records, and exporting those gives the same bytes."""

import io
import random
from datetime import timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stepout.adapters.memory import MemoryState, MemoryUnitOfWork
from stepout.domain.events import Event
from stepout.domain.instants import MICROS_PER_HOUR, parse_instant, to_datetime
from stepout.domain.interchange import concern_to_dict, exit_to_dict, session_to_dict
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.vocabulary import (
    CLIENT_INFORMED,
    EMS_DECISIONS,
    KNOWN_CODES,
    MODALITIES,
    REASONS,
    SAFEGUARDS,
    SOURCES,
)
from stepout.services.exporting import export_records
from stepout.services.importing import import_records

T = parse_instant
Stored = Session | Exit | Concern


def imported(lines: list[bytes]) -> MemoryState:
    state = MemoryState()
    with MemoryUnitOfWork(state) as uow:
        import_records(uow, lines)
    return state


def exported(state: MemoryState) -> bytes:
    out = io.BytesIO()
    with MemoryUnitOfWork(state) as uow:
        count = export_records(uow.records, out)
    data = out.getvalue()
    assert count == data.count(b"\n")
    return data


def dumped(state: MemoryState) -> set[Stored]:
    with MemoryUnitOfWork(state) as uow:
        return set(uow.records.dump())


SAMPLE = [
    b'{"kind":"session","id":"s2","practice":"p1","therapist":"t-001","client":"client-0001",'
    b'"room":"r1","modality":"telehealth","start":"2026-11-03T10:00:00-05:00",'
    b'"end":"2026-11-03T10:45:00-05:00"}\n',
    b'{"kind":"concern","id":"k1","session":"s1","raised_at":"2026-11-04T08:00:00-05:00",'
    b'"text":"The session was interrupted and we ran out of time."}\n',
    b'{"kind":"exit","id":"e1","session":"s1","source":"sensor",'
    b'"left_at":"2026-11-03T09:20:00.5-05:00"}\n',
    b'{"kind":"session","id":"s1","practice":"p1","therapist":"t-007","client":"client-0042",'
    b'"room":"r1","modality":"in_person","start":"2026-11-03T09:00:00-05:00",'
    b'"end":"2026-11-03T09:53:00-05:00","billed_codes":["90837","90785"]}\n',
]


def test_each_session_is_followed_by_its_exits_and_concerns_with_every_field_in_utc() -> None:
    lines = exported(imported(SAMPLE)).splitlines()
    records = [orjson.loads(line) for line in lines]
    assert [(r["kind"], r["id"]) for r in records] == [
        ("session", "s1"),
        ("exit", "e1"),
        ("concern", "k1"),
        ("session", "s2"),
    ]
    assert records[0]["start"] == "2026-11-03T14:00:00+00:00"
    assert records[0]["billed_codes"] == ["90837", "90785"]
    assert records[1] == {
        "kind": "exit",
        "id": "e1",
        "session": "s1",
        "source": "sensor",
        "reason": None,
        "reason_note": None,
        "left_at": "2026-11-03T14:20:00.500000+00:00",
        "returned_at": None,
        "client_informed": "not_informed",
        "explanation": None,
        "safeguards": [],
        "client_attended_by": None,
        "ems": None,
        "checked_in": False,
        "signed_at": None,
    }
    assert records[2]["acknowledged_at"] is None


def test_an_empty_store_exports_nothing() -> None:
    assert exported(MemoryState()) == b""


def test_importing_an_export_into_an_empty_store_gives_the_same_records() -> None:
    first = imported(SAMPLE)
    text = exported(first)
    second = imported(text.splitlines(keepends=True))
    assert dumped(second) == dumped(first)
    assert exported(second) == text


def test_the_export_is_written_in_batches(monkeypatch: Any) -> None:
    from stepout.services import exporting

    monkeypatch.setattr(exporting, "BATCH", 3)
    writes: list[bytes] = []

    class Sink(io.BytesIO):
        def write(self, data: Any) -> int:
            writes.append(bytes(data))
            return len(data)

    with MemoryUnitOfWork(imported(SAMPLE)) as uow:
        assert export_records(uow.records, Sink()) == 4
    assert [w.count(b"\n") for w in writes] == [3, 1]


# -- the round trip on generated records -------------------------------------------------

FROM, TO = T("2000-01-01T00:00:00Z"), T("2100-01-01T00:00:00Z")
TEXT = st.text(max_size=12)
OPTIONAL_TEXT = st.none() | TEXT


def _written(instant: int, rnd: random.Random) -> str:
    """The instant as ISO 8601 text at a random offset."""
    zone = timezone(timedelta(minutes=rnd.randint(-14 * 60, 14 * 60)))
    return to_datetime(instant).astimezone(zone).isoformat()


_DEFAULTS: dict[str, Any] = {
    "billed_codes": [],
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
    "acknowledged_at": None,
}
_INSTANTS = {"start", "end", "left_at", "returned_at", "signed_at", "raised_at", "acknowledged_at"}


def _line(record: Stored, rnd: random.Random) -> bytes:
    """A line another tool could write: any offsets, any key order, defaults left out."""
    if isinstance(record, Session):
        d = session_to_dict(record)
    elif isinstance(record, Exit):
        d = exit_to_dict(record)
        rnd.shuffle(d["safeguards"])
    else:
        d = concern_to_dict(record)
    for key in _INSTANTS & d.keys():
        if d[key] is not None:
            d[key] = _written(parse_instant(d[key]), rnd)
    items = [
        (k, v)
        for k, v in d.items()
        if not (k in _DEFAULTS and v == _DEFAULTS[k] and rnd.random() < 0.5)
    ]
    rnd.shuffle(items)
    return orjson.dumps(dict(items)) + b"\n"


@st.composite
def practice_records(draw: st.DrawFn) -> list[Stored]:
    records: list[Stored] = []
    for s_index in range(draw(st.integers(1, 4))):
        start = draw(st.integers(FROM, TO))
        end = start + draw(st.integers(1, 3 * MICROS_PER_HOUR))
        session = Session(
            id=f"s{s_index}",
            practice=draw(st.sampled_from(["p1", "p2"])),
            therapist=draw(st.sampled_from(["t-001", "t-002"])),
            client=draw(st.sampled_from(["client-0001", "client-0042"])),
            room=draw(st.sampled_from(["r1", "r2"])),
            modality=draw(st.sampled_from(MODALITIES)),
            start=start,
            end=end,
            billed_codes=tuple(draw(st.lists(st.sampled_from(sorted(KNOWN_CODES)), max_size=3))),
        )
        records.append(session)
        for x_index in range(draw(st.integers(0, 2))):
            left_at = draw(st.integers(start, end))
            returned = draw(st.none() | st.integers(left_at, left_at + MICROS_PER_HOUR))
            records.append(
                Exit(
                    id=f"e{s_index}-{x_index}",
                    session=session.id,
                    source=draw(st.sampled_from(SOURCES)),
                    left_at=left_at,
                    reason=draw(st.none() | st.sampled_from(REASONS)),
                    reason_note=draw(OPTIONAL_TEXT),
                    returned_at=returned,
                    client_informed=draw(st.sampled_from(CLIENT_INFORMED)),
                    explanation=draw(OPTIONAL_TEXT),
                    safeguards=draw(st.frozensets(st.sampled_from(SAFEGUARDS))),
                    client_attended_by=draw(OPTIONAL_TEXT),
                    ems=draw(st.none() | st.sampled_from(EMS_DECISIONS)),
                    checked_in=draw(st.booleans()),
                    signed_at=draw(st.none() | st.integers(FROM, TO)),
                )
            )
        if draw(st.booleans()):
            records.append(
                Concern(
                    id=f"k{s_index}",
                    session=session.id,
                    raised_at=draw(st.integers(FROM, TO)),
                    text=draw(TEXT),
                    acknowledged_at=draw(st.none() | st.integers(FROM, TO)),
                )
            )
    return records


@settings(max_examples=60, deadline=None)
@given(practice_records(), st.randoms(use_true_random=False))
def test_export_after_import_is_the_identity_on_valid_records(
    records: list[Stored], rnd: random.Random
) -> None:
    lines = [_line(r, rnd) for r in records]
    rnd.shuffle(lines)  # references may point forward
    first = imported(lines)
    assert dumped(first) == set(records)
    text = exported(first)
    second = imported(text.splitlines(keepends=True))
    assert dumped(second) == set(records)
    assert exported(second) == text


def test_a_session_in_progress_and_its_exits_wait_for_a_later_export() -> None:
    state = imported(SAMPLE)
    with MemoryUnitOfWork(state) as uow:
        uow.ledger.append(
            [
                Event(
                    "session.started",
                    "p1",
                    "s9",
                    T("2026-11-05T09:00:00Z"),
                    {
                        "practice": "p1",
                        "therapist": "t-001",
                        "client": "client-0001",
                        "room": "r1",
                        "modality": "in_person",
                        "start": "2026-11-05T09:00:00Z",
                        "billed_codes": [],
                    },
                ),
                Event(
                    "exit.declared",
                    "p1",
                    "e9",
                    T("2026-11-05T09:10:00Z"),
                    {
                        "session": "s9",
                        "source": "declared",
                        "reason": "technical",
                        "reason_note": None,
                        "left_at": "2026-11-05T09:10:00Z",
                        "expected_minutes": 2,
                    },
                ),
            ]
        )
        uow.commit()
    data = exported(state)
    assert b'"s9"' not in data
    assert b'"e9"' not in data
    assert data == exported(imported(SAMPLE))
