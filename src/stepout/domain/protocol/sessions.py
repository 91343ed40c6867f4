"""Starting and ending a session (from an appointment or not); raising and acknowledging a
client's concern.

A session started from an appointment (`StartSession.appointment`) takes the appointment's
id, client, room, modality and billed codes; the command names none of them. It is refused
when the appointment is not one of the therapist's ("not-found", as for another practice's:
a therapist sees only their own), is cancelled ("appointment-cancelled") or has started already (a
session with its id exists: "appointment-already-started"). The planned times do not bind
the start: a session may start early or late, and its start is the moment it starts.
"""

from dataclasses import replace

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
    not_found,
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
    if cmd.appointment is not None:
        cmd, new_id = _from_appointment(cmd, facts)
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


def _from_appointment(cmd: StartSession, facts: Facts) -> tuple[StartSession, str]:
    """The command with the appointment's plan filled in, and the session's id."""
    a = facts.appointment
    if (
        a is None
        or a.id != cmd.appointment
        or (a.practice, a.therapist)
        != (
            cmd.practice,
            cmd.therapist,
        )
    ):
        raise not_found("appointment")
    if cmd.client or cmd.room or cmd.modality or cmd.billed_codes:
        raise ProtocolError(
            "appointment-plan-given",
            "A session started from an appointment takes the appointment's client, room, "
            "modality and codes; leave them out.",
        )
    if a.cancelled:
        raise ProtocolError("appointment-cancelled", "This appointment was cancelled.")
    if facts.session is not None:
        raise ProtocolError("appointment-already-started", "This appointment has started.")
    planned = replace(
        cmd,
        client=a.client,
        room=a.room,
        modality=a.modality,
        billed_codes=a.billed_codes,
    )
    return planned, a.id


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
