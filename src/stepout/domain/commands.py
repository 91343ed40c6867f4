"""The commands of a session's live workflow: what a therapist, a client or a supervisor asks
Stepout to do. Plain frozen data from the edges (web, CLI); `stepout.domain.protocol` decides
what each one means, and refuses what cannot happen.

Choice fields are typed `str`, not the vocabulary's `Literal`s: they arrive unchecked from the
edges, and the protocol names what is wrong with them. Every command names the `practice` it
acts in (a record of another practice is not found) and the `actor` who asks (a user id, or
None when unknown), which the events carry.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class StartSession:
    """The session starts now. From an `appointment` (its id), the session takes the
    appointment's id, client, room, modality and billed codes, and the fields below must be
    left empty; the therapist must be the appointment's."""

    practice: str
    actor: str | None = None
    therapist: str
    client: str = ""
    room: str = ""
    modality: str = ""  # one of MODALITIES
    billed_codes: tuple[str, ...] = ()
    appointment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclareExit:
    """The one "step out" tap: the therapist leaves now, with everything said at the tap."""

    practice: str
    actor: str | None = None
    session: str
    reason: str | None = None  # one of REASONS
    reason_note: str | None = None
    client_informed: str = "not_informed"  # "before_leaving" or "not_informed" at the tap
    explanation: str | None = None  # the words said to the client
    safeguards: tuple[str, ...] = ()  # each one of SAFEGUARDS
    expected_minutes: int | None = None
    client_attended_by: str | None = None
    ems: str | None = None  # one of EMS_DECISIONS
    ems_note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectExit:
    """A sensor saw the session's therapist leave at `left_at` (`stepout.domain.detection`).
    While the therapist already has an exit open, it is the same absence: nothing changes."""

    practice: str
    actor: str | None = "sensor"
    session: str
    left_at: int  # an Instant


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorReturn:
    """A sensor saw the session's therapist back at `returned_at`: the end of their open
    sensor-detected exit in that session, if any (otherwise nothing changes)."""

    practice: str
    actor: str | None = "sensor"
    session: str
    returned_at: int  # an Instant


@dataclass(frozen=True, slots=True, kw_only=True)
class InformClient:
    practice: str
    actor: str | None = None
    exit: str
    client_informed: str  # "before_leaving" or "after_return"
    explanation: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmSafeguard:
    practice: str
    actor: str | None = None
    exit: str
    safeguard: str  # one of SAFEGUARDS


@dataclass(frozen=True, slots=True, kw_only=True)
class DecideEms:
    """Emergency services were called, or are not needed."""

    practice: str
    actor: str | None = None
    exit: str
    ems: str  # one of EMS_DECISIONS
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrangeAttendant:
    """Someone stays with the client while the therapist is out."""

    practice: str
    actor: str | None = None
    exit: str
    client_attended_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Return:
    """The therapist is back ("back" tap), optionally having checked the client is settled."""

    practice: str
    actor: str | None = None
    exit: str
    checked_in: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckIn:
    """After the return, the client is comfortable and regulated."""

    practice: str
    actor: str | None = None
    exit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignExit:
    practice: str
    actor: str | None = None
    exit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Amend:
    """A correction, kept beside the original as a clinical addendum is.

    `changes` maps interchange field names of the record to their new values, in interchange
    form (timestamps as ISO 8601 text with an offset, safeguards and codes as lists)."""

    practice: str
    actor: str | None = None
    kind: str  # "session", "exit" or "concern"
    id: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassifyExit:
    """Give a sensor-detected exit its reason (an amendment of `reason` and `reason_note`)."""

    practice: str
    actor: str | None = None
    exit: str
    reason: str  # one of REASONS
    reason_note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndSession:
    practice: str
    actor: str | None = None
    session: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RaiseConcern:
    """A client's concern about a session, in their words."""

    practice: str
    actor: str | None = None
    session: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AcknowledgeConcern:
    practice: str
    actor: str | None = None
    concern: str


ExitCommand = (
    InformClient
    | ConfirmSafeguard
    | DecideEms
    | ArrangeAttendant
    | Return
    | CheckIn
    | SignExit
    | ClassifyExit
)
Command = (
    StartSession
    | DeclareExit
    | DetectExit
    | SensorReturn
    | ExitCommand
    | Amend
    | EndSession
    | RaiseConcern
    | AcknowledgeConcern
)
