"""Starting and ending a session; raising and acknowledging a client's concern."""

from stepout.domain.commands import (
    AcknowledgeConcern,
    EndSession,
    RaiseConcern,
    StartSession,
)
from stepout.domain.instants import Instant
from stepout.domain.protocol.common import (
    Decision,
    Facts,
    ProtocolError,
    choice,
    new_event,
    not_before,
    own_concern,
    own_session,
    required,
    ts,
)
from stepout.domain.vocabulary import (
    KNOWN_CODES,
    MODALITIES,
)


def start_session(cmd: StartSession, facts: Facts, at: Instant, new_id: str) -> Decision:
    if facts.practice is None or facts.practice.id != cmd.practice:
        raise ProtocolError("not-found", "No such practice.")
    for what, text in (("therapist", cmd.therapist), ("client", cmd.client), ("room", cmd.room)):
        required(what, text)
    choice("modality", cmd.modality, MODALITIES)
    for code in cmd.billed_codes:
        choice("code", code, KNOWN_CODES)
    started = new_event(
        cmd,
        "session.started",
        new_id,
        at,
        practice=cmd.practice,
        therapist=cmd.therapist,
        client=cmd.client,
        room=cmd.room,
        modality=cmd.modality,
        start=ts(at),
        billed_codes=list(cmd.billed_codes),
    )
    return Decision("session", new_id, (started,))


def end_session(cmd: EndSession, facts: Facts, at: Instant) -> Decision:
    s = own_session(cmd, facts)
    if not s.in_progress:
        raise ProtocolError("session-already-ended", "This session has already ended.")
    not_before(at, s.start + 1, *(x.left_at for x in facts.exits))
    not_before(at, *(x.returned_at for x in facts.exits))
    return Decision("session", s.id, (new_event(cmd, "session.ended", s.id, at, end=ts(at)),))


def raise_concern(cmd: RaiseConcern, facts: Facts, at: Instant, new_id: str) -> Decision:
    s = own_session(cmd, facts)
    required("concern", cmd.text)
    not_before(at, s.start)
    raised = new_event(
        cmd, "concern.raised", new_id, at, session=s.id, raised_at=ts(at), text=cmd.text
    )
    return Decision("concern", new_id, (raised,))


def acknowledge(cmd: AcknowledgeConcern, facts: Facts, at: Instant) -> Decision:
    c, _ = own_concern(cmd, facts)
    if c.acknowledged_at is not None:
        raise ProtocolError("concern-already-acknowledged", "This concern is already acknowledged.")
    not_before(at, c.raised_at)
    event = new_event(cmd, "concern.acknowledged", c.id, at, acknowledged_at=ts(at))
    return Decision("concern", c.id, (event,))
