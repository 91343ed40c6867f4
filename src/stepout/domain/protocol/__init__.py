"""The live protocol of a session, as a pure state machine.

`decide(command, facts, at=..., new_id=...)` takes a command, the records it concerns (loaded
by the service layer into `Facts`) and the instant of the decision, and returns the events to
append, or raises `ProtocolError` with a stable `code` and a plain message that names no client
and echoes no free text. Nothing here reads a clock, makes an id or touches a store.

Decisions where DESIGN.md leaves room:
- Tenancy: a record of another practice is "not-found", exactly like an unknown id.
- One open exit per therapist: while a therapist has an exit with no return in any session of
  the practice still in progress, another exit is refused ("therapist-already-out").
- Ending a session with an exit still open is allowed. The exit keeps `returned_at = None`,
  which the rules and billing read as lasting to the session's end; it can no longer be
  returned ("session-not-in-progress": amend `returned_at` with a note if the therapist did
  come back), but it can still be documented and signed.
- Informing the client: `before_leaving` may be recorded while the exit has not returned (the
  tap may follow the words); after the return that is a claim about the past, made by
  amendment with a note ("exit-not-open"). `after_return` needs the return
  ("exit-not-returned"). Once the information is recorded with words, other information is
  refused ("client-already-informed": amend instead).
- A signed exit is closed to the live workflow ("exit-already-signed"); later changes are
  amendments, as clinical addenda are.
- Double taps are harmless no-ops (no event): a safeguard already confirmed, the same EMS
  decision without a note, the same attendant, a second check-in, the same information, the
  same classification, an amendment whose values are already recorded. Returning, ending,
  signing and acknowledging twice are refused: each records a moment.
- Amendments change interchange fields, never `id`, `kind` or the owning reference (a
  session's `practice`, an exit's or concern's `session`), and need a non-empty note. The
  amended record must pass the importer's checks (`validation.validate_record`: choices,
  instants with an offset, a return not before the leaving, an end after the start), and an
  acknowledgement may not precede its concern ("invalid-value"). Amendments may not do what
  only the live commands do ("session-in-progress"): a session is amended once it has ended
  (its record is incomplete until then: the importer requires an `end`), and an exit of a
  session in progress is never reopened.
- Sensor-detected exits (`DetectExit`, `SensorReturn`: the sensors' actor is "sensor") and
  declared ones are one exit per absence. A sensor's exit while the therapist already has an
  exit open, or one that began before an exit of the session ended, changes nothing: it is
  the same absence. A "step out" tap while the sensor's exit of that session is open is that
  exit's declaration (its reason, the words, safeguards, attendant, EMS land on it; its times
  stay the sensor's). The sensor's return and the therapist's "back" tap end a sensor exit
  whichever comes first; the other changes nothing (a tap still adds its check-in). The
  sensor never ends a declared exit.
- The clock must not run backwards across a record ("clock-behind"): no leaving before the
  session's start, no return before the leaving, no end before the last recorded instant
  (and none at the start itself: the importer requires an end after the start), no signature
  before the return, no acknowledgement before the concern.
"""

from stepout.domain.commands import (
    AcknowledgeConcern,
    Amend,
    Command,
    DeclareExit,
    DetectExit,
    EndSession,
    RaiseConcern,
    SensorReturn,
    StartSession,
)
from stepout.domain.instants import Instant
from stepout.domain.protocol.amendments import amend
from stepout.domain.protocol.common import Decision, Facts, ProtocolError
from stepout.domain.protocol.exits import (
    CLASSIFY_NOTE,
    MERGE_NOTE,
    declare_exit,
    detect_exit,
    on_exit,
    sensor_return,
)
from stepout.domain.protocol.sessions import acknowledge, end_session, raise_concern, start_session

__all__ = ["CLASSIFY_NOTE", "MERGE_NOTE", "Decision", "Facts", "ProtocolError", "decide"]


def decide(command: Command, facts: Facts, *, at: Instant, new_id: str | None = None) -> Decision:
    """The events `command` appends, given `facts`, at instant `at`. `new_id` names the record
    a StartSession, DeclareExit or RaiseConcern creates."""
    match command:
        case StartSession():
            return start_session(command, facts, at, needs_id(new_id))
        case DeclareExit():
            return declare_exit(command, facts, at, needs_id(new_id))
        case DetectExit():
            return detect_exit(command, facts, at, needs_id(new_id))
        case SensorReturn():
            return sensor_return(command, facts, at)
        case EndSession():
            return end_session(command, facts, at)
        case RaiseConcern():
            return raise_concern(command, facts, at, needs_id(new_id))
        case AcknowledgeConcern():
            return acknowledge(command, facts, at)
        case Amend():
            return amend(command, facts, at)
        case _:
            return on_exit(command, facts, at)


def needs_id(new_id: str | None) -> str:
    if not new_id:
        raise ValueError("a command that creates a record needs new_id")
    return new_id
