"""Schedules on the in-memory store: each format's reader (CSV, iCalendar, FHIR), the
all-or-nothing import with every error placed, re-imports, reschedules and cancellations, and
a session started from an appointment. Every id here is synthetic."""

from pathlib import Path

import orjson
import pytest

from stepout.adapters.memory import MemoryState, MemoryUnitOfWork
from stepout.adapters.schedule.csvfile import CsvFileError, read_csv
from stepout.adapters.schedule.fhir import FhirFileError, read_fhir
from stepout.adapters.schedule.ics import _scan, _simple, appointment_id, read_ics
from stepout.domain.commands import EndSession, StartSession
from stepout.domain.events import Event, EvolveError, evolve
from stepout.domain.instants import MICROS_PER_MINUTE, parse_instant
from stepout.domain.protocol import ProtocolError
from stepout.domain.schedule import Appointment, Raw
from stepout.services.schedule import ScheduleRejected, import_schedule
from stepout.services.workflow import Workflow

T0 = parse_instant("2026-12-07T08:00:00+00:00")
HEADER = "id,therapist,client,room,modality,start,end,billed_codes"
ROW_1 = "a-1,t-1,c-0001,room-1,in_person,2026-12-07T09:00:00-05:00,2026-12-07T09:50:00-05:00,90834"
ROW_2 = (
    "a-2,t-1,c-0002,room-1,telehealth,2026-12-07T10:00:00-05:00,2026-12-07T10:55:00-05:00,"
    "90837;90785"
)


class Directory:
    def therapists(self, practice: str) -> set[str]:
        return {"t-1", "t-2"}

    def rooms(self, practice: str) -> set[str]:
        return {"room-1", "room-2"}


@pytest.fixture
def state() -> MemoryState:
    state = MemoryState()
    with MemoryUnitOfWork(state) as uow:
        for p, zone in (("p1", "America/New_York"), ("p2", "UTC")):
            uow.ledger.append([Event("practice.created", p, p, T0, {"name": p, "timezone": zone})])
        uow.commit()
    return state


def csv_of(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


def run(state: MemoryState, entries: list[Raw], practice: str | None = "p1") -> dict[str, int]:
    uow = MemoryUnitOfWork(state)
    with uow:
        report = import_schedule(
            uow, entries, practice=practice, directory=Directory(), clock=lambda: T0
        )
    return report.effects


def rejected(state: MemoryState, entries: list[Raw]) -> list[str]:
    before = list(state.events)
    with pytest.raises(ScheduleRejected) as caught:
        run(state, entries)
    assert state.events == before, "a rejected schedule stored something"
    return [str(e) for e in caught.value.errors]


def stored(state: MemoryState, appointment_id: str) -> Appointment:
    found = state.records[("appointment", appointment_id)]
    assert isinstance(found, Appointment)
    return found


# CSV


def test_a_csv_schedule_plans_each_appointment(state: MemoryState) -> None:
    effects = run(state, list(read_csv(csv_of(ROW_1, ROW_2), None)))
    assert effects["schedule"] == 2
    a2 = stored(state, "a-2")
    assert (a2.practice, a2.therapist, a2.client, a2.room) == ("p1", "t-1", "c-0002", "room-1")
    assert a2.modality == "telehealth"
    assert a2.start == parse_instant("2026-12-07T15:00:00+00:00")
    assert a2.end - a2.start == 55 * MICROS_PER_MINUTE
    assert a2.billed_codes == ("90837", "90785")
    assert [e.kind for e in state.events[-2:]] == ["appointment.scheduled"] * 2


def test_reimporting_the_same_csv_changes_nothing(state: MemoryState) -> None:
    data = csv_of(ROW_1, ROW_2)
    run(state, list(read_csv(data, None)))
    events = len(state.events)
    effects = run(state, list(read_csv(data, None)))
    assert effects["unchanged"] == 2
    assert effects["schedule"] == effects["reschedule"] == 0
    assert len(state.events) == events


def test_every_bad_row_is_named_with_its_line_and_field_and_nothing_is_stored(
    state: MemoryState,
) -> None:
    data = csv_of(
        ROW_1,
        "a-2,t-1,c-0002,room-1,video,2026-12-07T10:00:00-05:00,2026-12-07T09:00:00-05:00,",
        "a-3,t-1,c-0003,room-1,in_person,2026-12-07T10:00:00,2026-12-07T11:00:00-05:00,12345",
        "a-4,t-9,c-0004,room-7,in_person,2026-12-07T12:00:00-05:00,2026-12-07T13:00:00-05:00,",
        ROW_1.replace("c-0001", "c-0009"),
        "a-5,t-1,,room-1,in_person",
        "a/6,t-1,c-6,room-1,in_person,2026-12-07T12:00:00-05:00,2026-12-07T13:00:00-05:00,",
    )
    assert rejected(state, list(read_csv(data, None))) == [
        "line 3: modality: must be one of in_person, telehealth",
        "line 3: end: is not after start",
        "line 4: start: must be an ISO 8601 time with an offset",
        "line 4: billed_codes: item 1 is not a known CPT code",
        "line 5: therapist: is not a therapist here",
        "line 5: room: is not a room of the practice",
        "line 6: id: is also at line 2",
        "line 7: csv: has 5 fields; the header (line 1) has 8",
        "line 8: id: must be 1 to 128 letters, digits and . _ : @ + - (starting with a letter "
        "or a digit)",
    ]


def test_a_csv_header_with_unknown_or_missing_columns_is_refused_whole() -> None:
    with pytest.raises(CsvFileError) as caught:
        list(read_csv(csv_of(header="id,therapist,client,room,start,notes,diagnosis here"), None))
    assert [str(e) for e in caught.value.errors] == [
        "line 1: notes: is not a schedule column",
        "line 1: ?: is not a schedule column",  # a name that could be free text is not echoed
        "line 1: modality: column is missing",
        "line 1: end: column is missing",
    ]


def test_a_practice_column_must_agree_with_the_practice_imported(state: MemoryState) -> None:
    header = HEADER + ",practice"
    assert rejected(state, list(read_csv(csv_of(ROW_1 + ",p2", header=header), "p1"))) == [
        "line 2: practice: is another practice; this import takes practice p1 only"
    ]
    entries = list(read_csv(csv_of(ROW_1 + ",p9", header=header), None))
    with pytest.raises(ScheduleRejected) as caught:
        run(state, entries, practice=None)
    assert [str(e) for e in caught.value.errors] == ["line 2: practice: is not a practice"]


def test_a_quoted_row_over_two_lines_is_placed_at_its_first_line(state: MemoryState) -> None:
    data = csv_of('a-1,t-1,"c-\n0001",room-1,in_person,2026-12-07T09:00,2026-12-07T10:00Z,', ROW_2)
    assert rejected(state, list(read_csv(data, None))) == [
        "line 2: start: must be an ISO 8601 time with an offset"
    ]


# Reschedules and cancellations


def test_a_changed_time_under_the_same_id_reschedules(state: MemoryState) -> None:
    run(state, list(read_csv(csv_of(ROW_1), None)))
    later = (
        ROW_1.replace("T09:00", "T11:00").replace("T09:50", "T11:50").replace("room-1", "room-2")
    )
    effects = run(state, list(read_csv(csv_of(later), None)))
    assert effects["reschedule"] == 1
    a1 = stored(state, "a-1")
    assert a1.start == parse_instant("2026-12-07T16:00:00+00:00")
    assert a1.room == "room-2"
    assert state.events[-1].kind == "appointment.rescheduled"


def test_a_cancelled_row_cancels_and_a_later_plan_reinstates(state: MemoryState) -> None:
    run(state, list(read_csv(csv_of(ROW_1), None)))
    header = HEADER + ",status"
    effects = run(state, list(read_csv(csv_of(ROW_1 + ",cancelled", header=header), None)))
    assert effects["cancel"] == 1
    assert stored(state, "a-1").cancelled
    again = run(state, list(read_csv(csv_of(ROW_1 + ",cancelled", header=header), None)))
    assert again["unchanged"] == 1
    assert run(state, list(read_csv(csv_of(ROW_1), None)))["reschedule"] == 1
    assert not stored(state, "a-1").cancelled
    never = run(state, list(read_csv(csv_of(ROW_2 + ",cancelled", header=header), None)))
    assert never["skip"] == 1
    assert ("appointment", "a-2") not in state.records


def test_a_started_appointment_cannot_be_rescheduled_or_cancelled(state: MemoryState) -> None:
    run(state, list(read_csv(csv_of(ROW_1), None)))
    flow = Workflow(lambda: MemoryUnitOfWork(state), clock=lambda: T0 + 60 * MICROS_PER_MINUTE)
    flow.start_session(StartSession(practice="p1", therapist="t-1", appointment="a-1"))
    later = ROW_1.replace("T09:00", "T11:00").replace("T09:50", "T11:50")
    assert rejected(state, list(read_csv(csv_of(later), None))) == [
        "line 2: id: has started; a started appointment cannot be rescheduled"
    ]
    header = HEADER + ",status"
    assert rejected(state, list(read_csv(csv_of(ROW_1 + ",cancelled", header=header), None))) == [
        "line 2: id: has started; a started appointment cannot be cancelled"
    ]
    assert run(state, list(read_csv(csv_of(ROW_1), None)))["unchanged"] == 1


def test_an_appointment_event_applies_only_to_an_appointment() -> None:
    data = {
        "practice": "p1", "therapist": "t-1", "client": "c-1", "room": "room-1",
        "modality": "in_person", "start": "2026-12-07T09:00:00+00:00",
        "end": "2026-12-07T10:00:00+00:00", "billed_codes": [],
    }  # fmt: skip
    planned = evolve(None, Event("appointment.scheduled", "p1", "a-1", T0, data))
    assert isinstance(planned, Appointment)
    with pytest.raises(EvolveError):
        evolve(planned, Event("appointment.scheduled", "p1", "a-1", T0, data))
    with pytest.raises(EvolveError):
        evolve(None, Event("appointment.cancelled", "p1", "a-9", T0, {}))


# iCalendar

ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Synthetic//Schedule//EN\r
BEGIN:VEVENT\r
UID:{uid}\r
DTSTAMP:20261101T000000Z\r
DTSTART{start}\r
DTEND{end}\r
SUMMARY:Synthetic session\r
X-STEPOUT-THERAPIST:t-1\r
X-STEPOUT-CLIENT:c-0001\r
X-STEPOUT-ROOM:room-1\r
X-STEPOUT-MODALITY:in_person\r
X-STEPOUT-CODES:90834,90785\r
{extra}END:VEVENT\r
END:VCALENDAR\r
"""


def ics(
    uid: str = "a-1@calendar.example",
    start: str = ";TZID=America/New_York:20261207T090000",
    end: str = ";TZID=America/New_York:20261207T095000",
    extra: str = "",
) -> bytes:
    return ICS.format(uid=uid, start=start, end=end, extra=extra).encode()


def test_an_ics_event_with_a_tzid_is_planned_in_that_zone(state: MemoryState) -> None:
    assert run(state, list(read_ics(ics(), "p1", "UTC")))["schedule"] == 1
    a = stored(state, "a-1@calendar.example")
    assert a.start == parse_instant("2026-12-07T14:00:00+00:00")
    assert a.billed_codes == ("90834", "90785")


@pytest.mark.parametrize(
    ("start", "end", "utc_start", "minutes"),
    [
        # The night clocks go back in New York (1 November 2026): 01:30 happens twice; the
        # first (EDT) is meant, and the hour that repeats is counted.
        (":20261101T013000", ":20261101T013000", "2026-11-01T05:30:00+00:00", 0),
        (":20261101T003000", ":20261101T013000", "2026-11-01T04:30:00+00:00", 60),
        (":20261101T013000", ":20261101T023000", "2026-11-01T05:30:00+00:00", 120),
        # The night clocks go forward (8 March 2026): 02:30 does not exist; RFC 5545 reads it
        # with the offset before the gap (EST), so it is 03:30 EDT.
        (":20260308T023000", ":20260308T040000", "2026-03-08T07:30:00+00:00", 30),
    ],
)
def test_ics_times_across_daylight_saving_changes(
    state: MemoryState, start: str, end: str, utc_start: str, minutes: int
) -> None:
    zone = ";TZID=America/New_York"
    entries = list(read_ics(ics(start=zone + start, end=zone + end), "p1", "UTC"))
    if minutes == 0:
        assert rejected(state, entries) == ["line 8: DTEND: is not after start"]
        return
    run(state, entries)
    a = stored(state, "a-1@calendar.example")
    assert a.start == parse_instant(utc_start)
    assert (a.end - a.start) // MICROS_PER_MINUTE == minutes


def test_floating_ics_times_are_read_in_the_practices_zone(state: MemoryState) -> None:
    entries = list(
        read_ics(ics(start=":20261207T090000", end=":20261207T100000"), "p1", "Asia/Tokyo")
    )
    run(state, entries)
    assert stored(state, "a-1@calendar.example").start == parse_instant("2026-12-07T00:00:00Z")
    utc = ics(uid="a-2", start=":20261207T090000Z", end=":20261207T100000Z")
    run(state, list(read_ics(utc, "p1", "Asia/Tokyo")))
    assert stored(state, "a-2").start == parse_instant("2026-12-07T09:00:00Z")


def test_an_ics_uid_outside_the_id_rules_gets_a_stable_id(state: MemoryState) -> None:
    uid = "040000008200E00074C5B7101A82E008/with space"
    assert appointment_id(uid) == appointment_id(uid)
    assert appointment_id(uid).startswith("ics-")
    run(state, list(read_ics(ics(uid=uid), "p1", "UTC")))
    assert ("appointment", appointment_id(uid)) in state.records
    given = ics(extra="X-STEPOUT-ID:a-77\r\n")
    run(state, list(read_ics(given, "p1", "UTC")))
    assert ("appointment", "a-77") in state.records


def test_ics_status_cancelled_cancels(state: MemoryState) -> None:
    run(state, list(read_ics(ics(), "p1", "UTC")))
    effects = run(state, list(read_ics(ics(extra="STATUS:CANCELLED\r\n"), "p1", "UTC")))
    assert effects["cancel"] == 1
    assert stored(state, "a-1@calendar.example").cancelled


def test_a_bad_ics_event_is_named_by_the_line_of_its_property(state: MemoryState) -> None:
    bad = ics(start=":garbage", end=";VALUE=DATE:20261207", extra="RRULE:FREQ=WEEKLY\r\n")
    bad = bad.replace(b"X-STEPOUT-CLIENT:c-0001\r\n", b"")
    assert rejected(state, list(read_ics(bad, "p1", "UTC"))) == [
        "line 4: X-STEPOUT-CLIENT: is required",  # missing: the line of BEGIN:VEVENT
        "line 7: DTSTART: cannot be read",
        "line 8: DTEND: must be a date and time, not a day",
        "line 14: RRULE: recurring events are not imported: export single occurrences",
    ]


# FHIR


def appointment(index: int, **changes: object) -> dict[str, object]:
    resource: dict[str, object] = {
        "resourceType": "Appointment",
        "id": f"fa-{index}",
        "status": "booked",
        "start": "2026-12-07T09:00:00-05:00",
        "end": "2026-12-07T09:50:00-05:00",
        "serviceType": [
            {"concept": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "90834"}]}}
        ],
        "participant": [
            {"actor": {"reference": "Practitioner/t-1"}, "status": "accepted"},
            {"actor": {"reference": "Patient/c-0001"}, "status": "accepted"},
            {
                "actor": {"reference": "https://ehr.example/fhir/Location/room-1"},
                "status": "accepted",
            },
        ],
    }
    resource.update(changes)
    return resource


def bundle(*resources: dict[str, object]) -> bytes:
    entries = [{"resource": r} for r in resources]
    return orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})


def test_a_fhir_bundle_maps_participants_to_ids(state: MemoryState) -> None:
    practitioner = {"resourceType": "Practitioner", "id": "t-1"}
    virtual = appointment(2, **{"class": [{"coding": [{"code": "VR"}]}]})
    run(state, list(read_fhir(bundle(practitioner, appointment(1), virtual), "p1")))
    a = stored(state, "fa-1")
    assert (a.therapist, a.client, a.room, a.modality) == ("t-1", "c-0001", "room-1", "in_person")
    assert a.billed_codes == ("90834",)
    assert stored(state, "fa-2").modality == "telehealth"
    cancelled = appointment(1, status="cancelled")
    assert run(state, list(read_fhir(bundle(cancelled), "p1")))["cancel"] == 1


def test_a_bad_fhir_entry_is_named_by_its_index(state: MemoryState) -> None:
    two_therapists = appointment(
        2,
        participant=[
            {"actor": {"reference": "Practitioner/t-1"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/t-2"}, "status": "accepted"},
            {"actor": {"reference": "Patient/c-1"}, "status": "accepted"},
            {"actor": {"reference": "Location/room-1"}, "status": "accepted"},
        ],
    )
    backwards = appointment(3, end="2026-12-07T08:00:00-05:00")
    invalid = appointment(4, minutesDuration="fifty")
    data = bundle(appointment(1), two_therapists, backwards, invalid)
    errors = rejected(state, list(read_fhir(data, "p1")))
    assert errors[:2] == [
        "entry[1]: participant: names more than one therapist",
        "entry[2]: end: is not after start",
    ]
    assert errors[2].startswith("entry[3]: minutesDuration: is not valid FHIR")
    assert len(errors) == 3


def test_a_file_that_is_not_a_bundle_is_refused() -> None:
    with pytest.raises(FhirFileError):
        list(read_fhir(b'{"resourceType": "Patient"}', "p1"))
    with pytest.raises(FhirFileError):
        list(read_fhir(b"not json", "p1"))


# Starting a session from an appointment


def test_a_session_started_from_an_appointment_takes_its_plan_and_id(state: MemoryState) -> None:
    run(state, list(read_csv(csv_of(ROW_2), None)))
    at = T0 + 120 * MICROS_PER_MINUTE
    times = iter((at, at + MICROS_PER_MINUTE, at + 50 * MICROS_PER_MINUTE))
    flow = Workflow(lambda: MemoryUnitOfWork(state), clock=lambda: next(times))
    s = flow.start_session(StartSession(practice="p1", therapist="t-1", appointment="a-2"))
    assert s.id == "a-2"
    assert (s.client, s.room, s.modality, s.billed_codes) == (
        "c-0002", "room-1", "telehealth", ("90837", "90785")
    )  # fmt: skip
    assert s.start == at
    with pytest.raises(ProtocolError) as again:
        flow.start_session(StartSession(practice="p1", therapist="t-1", appointment="a-2"))
    assert again.value.code == "appointment-already-started"
    flow.end_session(EndSession(practice="p1", session="a-2"))


@pytest.mark.parametrize(
    ("practice", "therapist", "appointment_id", "code"),
    [
        ("p1", "t-2", "a-1", "not-found"),  # another therapist's
        ("p2", "t-1", "a-1", "not-found"),  # another practice's
        ("p1", "t-1", "a-9", "not-found"),
        ("p1", "t-1", "a-3", "appointment-cancelled"),
    ],
)
def test_starting_from_an_appointment_that_is_not_yours_to_start_is_refused(
    state: MemoryState, practice: str, therapist: str, appointment_id: str, code: str
) -> None:
    header = HEADER + ",status"
    row_3 = ROW_1.replace("a-1", "a-3") + ",cancelled"
    run(state, list(read_csv(csv_of(ROW_1 + ",", header=header), None)))
    with MemoryUnitOfWork(state) as uow:
        data = {**(state.events[-1].data), "client": "c-3"}
        uow.ledger.append([Event("appointment.scheduled", "p1", "a-3", T0, data)])
        uow.commit()
    run(state, list(read_csv(csv_of(row_3, header=header), None)))
    flow = Workflow(lambda: MemoryUnitOfWork(state), clock=lambda: T0)
    events = len(state.events)
    with pytest.raises(ProtocolError) as refused:
        flow.start_session(
            StartSession(practice=practice, therapist=therapist, appointment=appointment_id)
        )
    assert refused.value.code == code
    assert len(state.events) == events


def test_an_appointment_brings_its_own_plan(state: MemoryState) -> None:
    run(state, list(read_csv(csv_of(ROW_1), None)))
    flow = Workflow(lambda: MemoryUnitOfWork(state), clock=lambda: T0)
    with pytest.raises(ProtocolError) as refused:
        flow.start_session(
            StartSession(practice="p1", therapist="t-1", appointment="a-1", room="room-2")
        )
    assert refused.value.code == "appointment-plan-given"


PLAIN_EVENTS = (
    ics(),
    ics(
        uid="a-2", start=":20261207T090000Z", end=":20261207T100000Z", extra="STATUS:CANCELLED\r\n"
    ),
    ics(start=":20261207T090000", end=";VALUE=DATE-TIME:20261207T100000"),
    ics(
        extra="X-STEPOUT-ID:a-77\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nX-STEPOUT-ROOM:room-9\r\n"
        "END:VALARM\r\n"
    ),
    ics(uid="a-very-long-uid-folded-across-two-lines@calendar.example").replace(
        b"UID:a-very-long-uid-folded", b"UID:a-very-long-uid\r\n -folded"
    ),
    ics(start=";TZID=Europe/Berlin:20261207T090000", end=";TZID=Asia/Tokyo:20261207T180000"),
)


@pytest.mark.parametrize("data", PLAIN_EVENTS)
def test_the_fast_ics_reader_agrees_with_icalendar(data: bytes) -> None:
    blocks, _, plain = _scan(data.decode())
    assert plain
    assert all(_simple(b) is not None for b in blocks), "the fast path was not taken"
    fast = list(read_ics(data, "p1", "America/Chicago"))
    slow = list(read_ics(data, "p1", "America/Chicago", fast=False))
    assert fast == slow
    assert fast[0].fields["start"] is not None


@pytest.mark.parametrize(
    "data",
    [
        ics(start=";TZID=Not/AZone:20261207T090000"),  # icalendar decides
        ics(extra="DURATION:PT50M\r\n").replace(
            b"DTEND;TZID=America/New_York:20261207T095000\r\n", b""
        ),
        ics(extra="X-STEPOUT-CODES;X-NOTE=a:90834\r\n"),
        ics(uid="a\\,1"),
    ],
)
def test_events_the_fast_reader_cannot_read_are_read_by_icalendar(data: bytes) -> None:
    blocks, _, _ = _scan(data.decode())
    assert _simple(blocks[0]) is None
    assert list(read_ics(data, "p1", "UTC")) == list(read_ics(data, "p1", "UTC", fast=False))


class DocsDirectory:
    def therapists(self, practice: str) -> set[str]:
        return {"t-001", "t-002"}

    def rooms(self, practice: str) -> set[str]:
        return {"room-1", "room-2"}


def test_the_example_files_of_the_docs_import_as_described(state: MemoryState) -> None:
    examples = Path(__file__).parents[2] / "docs" / "examples"
    entries = [
        *read_csv((examples / "schedule.csv").read_bytes(), "p1"),
        *read_ics((examples / "schedule.ics").read_bytes(), "p1", "America/New_York"),
    ]
    with MemoryUnitOfWork(state) as uow:
        report = import_schedule(uow, entries, practice="p1", directory=DocsDirectory())
    assert report.effects == {
        "schedule": 5, "reschedule": 0, "cancel": 0, "unchanged": 0, "skip": 1
    }  # fmt: skip
    duration = stored(state, "appt-0102@calendar.example")
    assert duration.end - duration.start == 55 * MICROS_PER_MINUTE
    assert stored(state, "appt-0002").billed_codes == ("90837", "90785")


def test_the_quick_check_and_the_full_check_build_the_same_appointment() -> None:
    from stepout.domain.schedule import _check_fully, check_planned

    entries = [
        *read_csv(csv_of(ROW_1, ROW_2, " a-3 , t-1 , c-3 , room-2 ,in_person,"
                         "2026-12-07T09:00Z,2026-12-07T10:00Z,"), "p1"),
        *read_ics(ics(), "p1", "UTC"),
        *read_fhir(bundle(appointment(1)), "p1"),
    ]  # fmt: skip
    for raw in entries:
        quick = check_planned(raw)
        assert quick[0] is not None
        assert quick == _check_fully(raw)
