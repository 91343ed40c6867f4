"""What a room's display shows, from the room's session and its therapist's open exit."""

from stepout.domain.accounts import HelpText
from stepout.domain.display import room_display
from stepout.domain.instants import MICROS_PER_MINUTE as MINUTE_US
from stepout.domain.instants import parse_instant
from stepout.domain.records import Exit, Session

T0 = parse_instant("2026-03-02T14:00:00+00:00")
HELP = HelpText("Press the red button.", "Reception: extension 100.", "Call 911.")


def _session(sid: str = "s-1", end: int | None = None) -> Session:
    return Session(sid, "p1", "t-001", "client-0001", "r1", "in_person", T0, end)


def _exit(**more: object) -> Exit:
    fields: dict[str, object] = {
        "id": "x-1",
        "session": "s-1",
        "source": "declared",
        "left_at": T0 + 10 * MINUTE_US,
        "explanation": "I will be right back.",
        "expected_minutes": 5,
    }
    fields.update(more)
    return Exit(**fields)  # type: ignore[arg-type]


def test_an_empty_room_is_idle_and_says_nothing_else() -> None:
    body = room_display("r1", None, None, HELP, at=T0).to_json()
    assert body == {"room": "r1", "state": "idle", "concern_url": None}


def test_a_session_in_progress_shows_only_that_a_session_is_on() -> None:
    shown = room_display("r1", _session(), None, HELP, at=T0 + MINUTE_US)
    body = shown.to_json("https://x.test/c/s-1/abc")
    assert body["state"] == "in_session"
    assert body["since"] == "2026-03-02T14:00:00+00:00"
    assert body["concern_url"] == "https://x.test/c/s-1/abc"
    assert shown.concern_session == "s-1"
    assert "help" not in body


def test_away_shows_the_words_the_expected_return_and_the_help_but_no_names() -> None:
    shown = room_display("r1", _session(), _exit(), HELP, at=T0 + 11 * MINUTE_US)
    body = shown.to_json()
    assert body["state"] == "away"
    assert body["explanation"] == "I will be right back."
    assert body["left_at"] == "2026-03-02T14:10:00+00:00"
    assert body["expected_back"] == "2026-03-02T14:15:00+00:00"
    assert body["help"] == {
        "call_button": "Press the red button.",
        "reception": "Reception: extension 100.",
        "emergency": "Call 911.",
    }
    text = repr(body)
    assert "client-0001" not in text
    assert "t-001" not in text
    assert "technical" not in text


def test_away_without_expected_minutes_has_no_expected_return() -> None:
    body = room_display(
        "r1", _session(), _exit(expected_minutes=None), HELP, at=T0 + 11 * MINUTE_US
    ).to_json()
    assert body["expected_back"] is None


def test_an_open_exit_of_another_session_does_not_make_this_room_away() -> None:
    other = _exit(session="s-9")
    assert room_display("r1", _session(), other, HELP, at=T0).state == "in_session"


def test_the_concern_link_stays_for_the_window_after_the_session_ends() -> None:
    ended = _session(end=T0 + 50 * MINUTE_US)
    soon = room_display("r1", None, None, HELP, ended, at=T0 + 60 * MINUTE_US)
    assert (soon.state, soon.concern_session) == ("idle", "s-1")
    edge = room_display("r1", None, None, HELP, ended, at=T0 + 65 * MINUTE_US)
    assert edge.concern_session == "s-1"
    late = room_display("r1", None, None, HELP, ended, at=T0 + 65 * MINUTE_US + 1)
    assert (late.state, late.concern_session) == ("idle", None)
