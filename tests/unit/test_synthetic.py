"""The synthetic practice generator: deterministic, valid under the interchange format,
pseudonymous, and realistic in the shares docs/synthetic-data.md documents."""

import io
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from stepout.domain.interchange import CONCERN_FIELDS, EXIT_FIELDS, SESSION_FIELDS
from stepout.domain.vocabulary import (
    CLIENT_INFORMED,
    EMS_DECISIONS,
    KNOWN_CODES,
    MODALITIES,
    REASONS,
    SAFEGUARDS,
    SOURCES,
)
from stepout.synthetic import GeneratorConfig, generate, write_jsonl
from stepout.synthetic.exits import ATTENDANTS, CONCERNS, EXPLANATIONS, NOTES
from stepout.synthetic.practice import Clock, sizes

Record = dict[str, Any]
FIELDS = {
    "session": ("kind", *SESSION_FIELDS),
    "exit": ("kind", *EXIT_FIELDS),
    "concern": ("kind", *CONCERN_FIELDS),
}
ID_PATTERNS = {"session": r"s-\d{7}", "exit": r"e-\d{7}", "concern": r"k-\d{7}"}
SENTENCES = {s for group in (*EXPLANATIONS.values(), *NOTES.values()) for s in group}
SENTENCES |= {*ATTENDANTS, *CONCERNS}


def records(sessions: int, seed: int = 0, **options: Any) -> list[Record]:
    return list(generate(GeneratorConfig(sessions=sessions, seed=seed, **options)))


def jsonl(sessions: int, seed: int = 0) -> bytes:
    out = io.BytesIO()
    write_jsonl(generate(GeneratorConfig(sessions=sessions, seed=seed)), out)
    return out.getvalue()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def sample() -> list[Record]:
    return records(5000, seed=3)


def by_kind(recs: list[Record]) -> dict[str, list[Record]]:
    kinds: dict[str, list[Record]] = defaultdict(list)
    for r in recs:
        kinds[r["kind"]].append(r)
    return kinds


def test_the_same_seed_writes_the_same_bytes() -> None:
    assert jsonl(1500, seed=11) == jsonl(1500, seed=11)


def test_different_seeds_write_different_data() -> None:
    assert jsonl(1500, seed=1) != jsonl(1500, seed=2)


@pytest.mark.parametrize("sessions", [0, 1, 99, 100, 777])
def test_generates_exactly_the_sessions_asked_for(sessions: int) -> None:
    assert sum(r["kind"] == "session" for r in records(sessions)) == sessions


def test_every_record_has_the_interchange_fields_kind_first(sample: list[Record]) -> None:
    for r in sample:
        assert tuple(r) == FIELDS[r["kind"]]


def test_ids_are_unique_and_pseudonymous(sample: list[Record]) -> None:
    for kind, recs in by_kind(sample).items():
        ids = [r["id"] for r in recs]
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(ID_PATTERNS[kind], i) for i in ids)
    sessions = by_kind(sample)["session"]
    assert all(re.fullmatch(r"t-\d{3}", s["therapist"]) for s in sessions)
    assert all(re.fullmatch(r"client-\d{5}", s["client"]) for s in sessions)
    assert all(re.fullmatch(r"room-\d{2,}", s["room"]) for s in sessions)
    assert {s["practice"] for s in sessions} == {"demo"}


def test_field_types_and_choices_follow_the_format(sample: list[Record]) -> None:
    kinds = by_kind(sample)
    for s in kinds["session"]:
        assert s["modality"] in MODALITIES
        assert isinstance(s["billed_codes"], list)
        assert set(s["billed_codes"]) <= KNOWN_CODES
    for x in kinds["exit"]:
        assert x["source"] in SOURCES
        assert x["reason"] is None or x["reason"] in REASONS
        assert x["client_informed"] in CLIENT_INFORMED
        assert x["ems"] is None or x["ems"] in EMS_DECISIONS
        assert isinstance(x["checked_in"], bool)
        assert isinstance(x["safeguards"], list)
        assert set(x["safeguards"]) <= set(SAFEGUARDS)
        assert len(set(x["safeguards"])) == len(x["safeguards"])
        for name in ("reason_note", "explanation", "client_attended_by"):
            assert x[name] is None or isinstance(x[name], str)
    for k in kinds["concern"]:
        assert isinstance(k["text"], str)
        assert k["text"]


def test_free_text_comes_from_the_synthetic_sentences(sample: list[Record]) -> None:
    texts = set()
    for r in sample:
        for name in ("reason_note", "explanation", "client_attended_by", "text"):
            if r.get(name):
                texts.add(r[name])
    assert texts <= SENTENCES


def test_every_timestamp_is_iso_8601_with_an_offset(sample: list[Record]) -> None:
    names = ("start", "end", "left_at", "returned_at", "signed_at", "raised_at", "acknowledged_at")
    for r in sample:
        for name in names:
            if r.get(name) is not None:
                assert at(r[name]).utcoffset() is not None


def test_sessions_come_before_their_exits_and_concerns(sample: list[Record]) -> None:
    current = None
    for r in sample:
        if r["kind"] == "session":
            current = r["id"]
        else:
            assert r["session"] == current


def test_sessions_are_on_weekdays_between_eight_and_seven(sample: list[Record]) -> None:
    for s in by_kind(sample)["session"]:
        start, end = at(s["start"]), at(s["end"])
        assert start.weekday() < 5
        assert start.date() == end.date()
        assert start.hour >= 8
        assert (end.hour, end.minute) <= (19, 0)
        assert int((end - start).total_seconds()) // 60 in {
            30,
            45,
            53,
            60,
            75,
            80,
            90,
            105,
            110,
            120,
        }


def test_timestamps_carry_the_practice_offset_across_daylight_saving() -> None:
    sessions = by_kind(records(3000, start=date(2026, 10, 26)))["session"]
    offsets = {at(s["start"]).strftime("%z") for s in sessions}
    assert offsets == {"-0400", "-0500"}  # America/New_York, October into November


def test_exits_lie_inside_their_sessions(sample: list[Record]) -> None:
    kinds = by_kind(sample)
    sessions = {s["id"]: s for s in kinds["session"]}
    for x in kinds["exit"]:
        s = sessions[x["session"]]
        start, end, left = at(s["start"]), at(s["end"]), at(x["left_at"])
        assert start <= left < end
        if x["returned_at"] is not None:
            assert left <= at(x["returned_at"]) <= end
        if x["signed_at"] is not None:
            assert at(x["signed_at"]) > left


def test_exits_of_one_session_do_not_overlap(sample: list[Record]) -> None:
    per_session: dict[str, list[Record]] = defaultdict(list)
    for x in by_kind(sample)["exit"]:
        per_session[x["session"]].append(x)
    for exits in per_session.values():
        for before, after in pairwise(exits):
            assert before["returned_at"] is not None
            assert at(before["returned_at"]) <= at(after["left_at"])


def test_concerns_are_raised_after_the_session_and_acknowledged_later(
    sample: list[Record],
) -> None:
    kinds = by_kind(sample)
    sessions = {s["id"]: s for s in kinds["session"]}
    assert kinds["concern"]
    for k in kinds["concern"]:
        raised = at(k["raised_at"])
        assert raised > at(sessions[k["session"]]["end"])
        if k["acknowledged_at"] is not None:
            assert at(k["acknowledged_at"]) > raised


def test_about_five_percent_of_sessions_have_an_exit() -> None:
    kinds = by_kind(records(20_000, seed=5))
    share = len({x["session"] for x in kinds["exit"]}) / len(kinds["session"])
    assert 0.035 < share < 0.07


def test_the_high_rate_therapist_steps_out_well_above_five_percent(
    sample: list[Record],
) -> None:
    kinds = by_kind(sample)
    sessions = Counter(s["therapist"] for s in kinds["session"])
    therapist_of = {s["id"]: s["therapist"] for s in kinds["session"]}
    left = Counter(therapist_of[sid] for sid in {x["session"] for x in kinds["exit"]})
    assert sessions["t-001"] >= 20
    assert left["t-001"] / sessions["t-001"] > 0.10


def test_the_mix_has_every_kind_of_exit_and_billing(sample: list[Record]) -> None:
    kinds = by_kind(sample)
    exits = kinds["exit"]
    assert {x["reason"] for x in exits} == {*REASONS, None}
    assert {x["source"] for x in exits} == set(SOURCES)
    assert {x["client_informed"] for x in exits} == set(CLIENT_INFORMED)
    assert any(x["returned_at"] is None for x in exits)
    assert any(x["signed_at"] is None for x in exits)
    assert any(len(x["safeguards"]) < 3 for x in exits)
    codes = {c for s in kinds["session"] for c in s["billed_codes"]}
    assert codes == KNOWN_CODES
    assert any(not s["billed_codes"] for s in kinds["session"])
    assert {s["modality"] for s in kinds["session"]} == set(MODALITIES)
    assert any(k["acknowledged_at"] is None for k in kinds["concern"])


def test_write_jsonl_writes_one_parseable_line_per_record() -> None:
    out = io.BytesIO()
    written = write_jsonl(generate(GeneratorConfig(sessions=300)), out)
    lines = out.getvalue().splitlines()
    assert written == len(lines)
    assert [orjson.loads(line) for line in lines] == records(300)


def test_write_jsonl_reports_progress_in_sessions_done() -> None:
    calls: list[int] = []
    write_jsonl(generate(GeneratorConfig(sessions=20_000)), io.BytesIO(), calls.append)
    assert len(calls) > 1
    assert calls == sorted(calls)
    assert calls[-1] == 20_000


def test_default_cast_has_about_25_sessions_a_week_per_therapist() -> None:
    assert sizes(500, None, None) == (5, 5)
    assert sizes(1_000_000, None, None) == (769, 769)
    assert sizes(500, 3, 2) == (3, 2)


def test_other_time_zones_and_start_dates() -> None:
    first = records(10, timezone="Asia/Kolkata", start=date(2026, 10, 3))[0]
    assert first["start"] == "2026-10-05T08:00:00+05:30"  # the Saturday start moves to Monday


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Australia/Lord_Howe"])
def test_clock_formats_instants_as_the_zone_does(zone: str) -> None:
    clock = Clock(zone)
    tz = ZoneInfo(zone)
    first = int(datetime(2026, 3, 25, tzinfo=UTC).timestamp())
    for t in range(first, first + 250 * 86_400, 977):  # through both changes of the year
        assert clock.text(t) == datetime.fromtimestamp(t, tz).isoformat()


def test_clock_formats_the_seconds_around_a_change_of_offset() -> None:
    clock = Clock("America/New_York")
    change = int(datetime(2026, 11, 1, 6, tzinfo=UTC).timestamp())
    assert clock.text(change - 1) == "2026-11-01T01:59:59-04:00"
    assert clock.text(change) == "2026-11-01T01:00:00-05:00"


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"sessions": -1}, "sessions must not be negative"),
        ({"sessions": 10, "therapists": 0}, "therapists must be at least 1"),
        ({"sessions": 10, "rooms": 0}, "rooms must be at least 1"),
        ({"sessions": 10, "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"sessions": 10, "practice": ""}, "practice must not be empty"),
    ],
)
def test_config_rejects_impossible_values(options: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        GeneratorConfig(**options)
