"""What a room's display shows: derived from the room's session in progress and its
therapist's open exit. Pure: the web edge reads the records and sends the result as JSON.

The display never shows a name, a client id, a reason or anything else about the client: only
that the therapist has stepped out, the words the therapist chose for the client, when they
expect to be back, and the practice's help text.
"""

from dataclasses import dataclass
from typing import Any, Literal

from stepout.domain.accounts import HelpText
from stepout.domain.instants import MICROS_PER_MINUTE, Instant, format_instant
from stepout.domain.records import Exit, Session

DisplayState = Literal["idle", "in_session", "away"]


@dataclass(frozen=True, slots=True)
class Display:
    room: str
    state: DisplayState
    since: Instant | None = None  # when the state began (session start or the exit)
    explanation: str | None = None
    expected_back: Instant | None = None
    help: HelpText | None = None
    concern_session: str | None = None  # the session whose concern link the display offers

    def to_json(self, concern_url: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"room": self.room, "state": self.state}
        if self.state == "away":
            body["left_at"] = _iso(self.since)
            body["explanation"] = self.explanation
            body["expected_back"] = _iso(self.expected_back)
        elif self.state == "in_session":
            body["since"] = _iso(self.since)
        if self.help is not None:
            body["help"] = {
                "call_button": self.help.call_button,
                "reception": self.help.reception,
                "emergency": self.help.emergency,
            }
        body["concern_url"] = concern_url
        return body


def _iso(instant: Instant | None) -> str | None:
    return None if instant is None else format_instant(instant)


def room_display(
    room: str,
    session: Session | None,
    open_exit: Exit | None,
    help_text: HelpText,
    last_ended: Session | None = None,
    *,
    at: Instant,
    concern_window_us: int = 15 * MICROS_PER_MINUTE,
) -> Display:
    """The display of `room` at `at`. `session` is the room's session in progress (if any),
    `open_exit` its therapist's exit not yet returned from, `last_ended` the room's most recent
    ended session: its concern link stays up for `concern_window_us` after its end, unless a
    new session has started."""
    if session is not None and open_exit is not None and open_exit.session == session.id:
        expected = (
            None
            if open_exit.expected_minutes is None
            else open_exit.left_at + open_exit.expected_minutes * MICROS_PER_MINUTE
        )
        return Display(
            room,
            "away",
            since=open_exit.left_at,
            explanation=open_exit.explanation,
            expected_back=expected,
            help=help_text,
            concern_session=session.id,
        )
    if session is not None:
        return Display(room, "in_session", since=session.start, concern_session=session.id)
    recent = (
        last_ended is not None
        and last_ended.end is not None
        and at - last_ended.end <= concern_window_us
    )
    return Display(room, "idle", concern_session=last_ended.id if recent and last_ended else None)
