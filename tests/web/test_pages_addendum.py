"""The addendum text and the list of what an exit lacks: pure functions of the records."""

from stepout.domain.instants import MICROS_PER_MINUTE, parse_instant
from stepout.domain.records import Exit, Session
from stepout.web.pages.addendum import addendum
from stepout.web.pages.checklist import missing

START = parse_instant("2026-03-02T15:00:00+00:00")
ALL_SAFEGUARDS = frozenset({"records_secured", "screen_locked", "door_closed"})


def session(end_minutes: int | None = 50) -> Session:
    end = None if end_minutes is None else START + end_minutes * MICROS_PER_MINUTE
    return Session("s1", "p1", "t1", "c-1", "room-1", "in_person", START, end)


def an_exit(**fields: object) -> Exit:
    values: dict[str, object] = {
        "id": "e1",
        "session": "s1",
        "source": "declared",
        "left_at": START + 10 * MICROS_PER_MINUTE,
        "reason": "technical",
        **fields,
    }
    return Exit(**values)  # type: ignore[arg-type]


def test_a_complete_exit_reads_as_plain_sentences() -> None:
    x = an_exit(
        returned_at=START + 14 * MICROS_PER_MINUTE,
        client_informed="before_leaving",
        explanation="Back in a few minutes",
        safeguards=ALL_SAFEGUARDS,
        checked_in=True,
        expected_minutes=5,
    )
    assert addendum(x, session(), "America/New_York") == (
        "On Mon 2 Mar 2026 at 10:10 I stepped out of the session because of a technical or "
        "facility problem. I expected to be away about 5 minutes. I came back at 10:14, after "
        "4 minutes away. Before leaving I told the client: \u201cBack in a few minutes\u201d. "
        "Confidentiality: records secured, screen locked and door closed. On my return I "
        "checked in with the client."
    )
    assert missing(x) == []


def test_what_was_not_done_is_said_too() -> None:
    x = an_exit(reason="health_emergency", safeguards=frozenset({"door_closed"}))
    text = addendum(x, session(), "UTC")
    assert "No return was recorded before the session ended at 15:50." in text
    assert "The client was not told why I left." in text
    assert "Confidentiality: door closed; not confirmed: records secured and screen locked." in text
    assert "No decision about emergency services was recorded." in text
    assert "No one was recorded as staying with the client." in text
    keys = [m.key for m in missing(x)]
    assert keys == [
        "informed",
        "safeguard:records_secured",
        "safeguard:screen_locked",
        "ems",
        "attendant",
    ]


def test_a_sensor_exit_without_a_reason_and_an_other_with_a_note() -> None:
    sensed = an_exit(source="sensor", reason=None)
    assert "detected by a sensor; no reason recorded" in addendum(sensed, session(None))
    assert "I have not come back yet." in addendum(sensed, session(None))
    assert missing(sensed)[0].key == "reason"
    other = an_exit(reason="other", reason_note="fire alarm test")
    assert "because of another reason: fire alarm test." in addendum(other, session())


def test_after_return_and_emergency_decisions() -> None:
    x = an_exit(
        reason="client_safety",
        returned_at=START + 11 * MICROS_PER_MINUTE,
        client_informed="after_return",
        explanation="I checked the corridor was clear!",
        ems="not_needed",
        client_attended_by="Reception",
    )
    text = addendum(x, session())
    told = "After coming back I told the client: \u201cI checked the corridor was clear!\u201d"
    assert told in text
    assert "I judged that emergency services were not needed." in text
    assert "Reception stayed with the client while I was away." in text
    assert "after 1 minute away" in text
    assert "No check-in with the client after my return was recorded." in text
    assert [m.key for m in missing(x)][-1] == "check_in"
