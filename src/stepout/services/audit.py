"""The audit trail, as the services and the edges see it: who did what to which record, when,
from where, with what outcome. Ids and names of actions only: never health data.

`AuditRecord` is one entry before it is chained; `Caller` is who and where (the edges build
it: a user on the API or the pages, a room's display, an operator at the command line) and
makes records. A unit of work's `audit` (the `AuditTrail` port) appends records in its own
transaction, so a write of health data and its audit record commit or roll back together.
`write_alone` records what has no write of its own (a read, a sign-in, a refusal) in a short
transaction of its own. The chain itself is `stepout.domain.audit_trail`; the SQL adapter is
`stepout.adapters.db.audit`.
"""

import getpass
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Final, Literal, Protocol, Self

from stepout.domain.commands import (
    AcknowledgeConcern,
    Amend,
    ArrangeAttendant,
    CheckIn,
    ClassifyExit,
    Command,
    ConfirmSafeguard,
    DecideEms,
    DeclareExit,
    DetectExit,
    EndSession,
    InformClient,
    RaiseConcern,
    Return,
    SensorReturn,
    SignExit,
    StartSession,
)

Outcome = Literal["ok", "refused", "failed"]
Channel = Literal["api", "page", "cli", "display", "sensor"]

OK: Final = "ok"
REFUSED: Final = "refused"  # the caller may not (401, 403, or a record it may not see: 404)
FAILED: Final = "failed"  # allowed, but it did not happen (wrong password, protocol refusal)

ANONYMOUS: Final = "anonymous"
CLI_ORIGIN: Final = "cli"

# The fixed vocabulary of actions, each with what it means. docs/architecture.md lists them.
ACTIONS: Final[dict[str, str]] = {
    # Writes of health data: recorded in the transaction that appends to the ledger.
    "session.start": "a session started",
    "session.end": "a session ended",
    "exit.declare": "a therapist stepped out",
    "exit.return": "the therapist came back",
    "exit.check_in": "the therapist checked in with the client",
    "exit.inform": "what the client was told",
    "exit.safeguard": "a confidentiality safeguard confirmed",
    "exit.ems": "the emergency-services decision",
    "exit.attendant": "who stayed with the client",
    "exit.classify": "a sensor-detected exit given its reason",
    "exit.detect": "a sensor saw a therapist out of their session (actor `sensor`)",
    "exit.sensor_return": "a sensor saw the therapist back (actor `sensor`)",
    "presence.report": "a video platform reported a participant leaving or rejoining the call "
    "(target: the session)",
    "exit.sign": "an exit's documentation signed",
    "session.amend": "a session amended",
    "exit.amend": "an exit amended",
    "concern.amend": "a concern's record amended",
    "concern.raise": "a client raised a concern (through the session's private link)",
    "concern.acknowledge": "a supervisor acknowledged a concern",
    "finding.acknowledge": "a finding acknowledged, with a note (target: the finding's key)",
    "finding.assign": "a finding assigned to a therapist (target: the finding's key)",
    "finding.resolve": "a finding resolved, with a note (target: the finding's key)",
    "records.import": "records imported (JSON Lines)",
    "schedule.import": "a schedule imported: appointments from CSV, iCalendar or a FHIR Bundle "
    "(count: appointments read)",
    # Reads of health data: recorded before the data is returned.
    "session.read": "one session, with its exits (and concerns, for supervisors)",
    "session.list": "a day's sessions (target: the date; count: how many)",
    "exit.read": "one exit",
    "exit.list": "exits waiting for a signature (count: how many)",
    "concern.read": "one concern",
    "overview.read": "the supervisor's overview (concerns, exits, findings, billing lines)",
    "findings.read": "the protocol findings of a selection (count: how many)",
    "billing.read": "billing lines of a selection (count: how many)",
    "summary.read": "the at-a-glance summary (`stepout summary`)",
    "records.export": "every stored record exported (count: how many)",
    "fhir.export": "a FHIR Bundle of a selection (target: the period, or `list`; count: "
    "resources, on the API)",
    "dashboard.read": "the supervisor's dashboard: its charts' figures (target: the period)",
    "report.export": "a monthly report (`stepout report`, or the dashboard's download; "
    "target: the month's dates, or the one practice)",
    "table.export": "a page's table downloaded as CSV or JSON (target: the period, or `list`; "
    "count: rows)",
    "display.read": "a room display's state (its page, JSON or event stream)",
    # Signing in and out, and refusals.
    "login.succeeded": "a browser signed in (the last step: password, and code if asked)",
    "login.password_accepted": "the password was right; the second factor is asked next",
    "login.failed": "a wrong username, password or second-factor code",
    "login.throttled": "a sign-in refused after too many failures",
    "logout": "a browser signed out",
    "access.refused": "a request refused: no or a bad credential (401), a role that may "
    "not (403), or a record the caller may not see (404)",
}

WRITES: Final[dict[type, str]] = {
    StartSession: "session.start",
    EndSession: "session.end",
    DeclareExit: "exit.declare",
    Return: "exit.return",
    CheckIn: "exit.check_in",
    InformClient: "exit.inform",
    ConfirmSafeguard: "exit.safeguard",
    DecideEms: "exit.ems",
    ArrangeAttendant: "exit.attendant",
    ClassifyExit: "exit.classify",
    DetectExit: "exit.detect",
    SensorReturn: "exit.sensor_return",
    SignExit: "exit.sign",
    RaiseConcern: "concern.raise",
    AcknowledgeConcern: "concern.acknowledge",
}

# What a target may look like: an id, a date, `list`. Anything else (free text typed into a
# URL where an id belongs) is not stored.
_TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}")


def clean_target(value: str | None) -> str | None:
    """`value` if it has the shape of an id, else None."""
    if value is None or _TARGET.fullmatch(value) is None:
        return None
    return value


def span_target(first: date | None, last: date | None) -> str:
    """The target of a read over a date range: `2026-11-01..2026-11-30` (`start`/`end` for an
    open side), or `list` for every date."""
    if first is None and last is None:
        return "list"
    return f"{first or 'start'}..{last or 'end'}"


def action_of(command: Command) -> str:
    """The audit action of a workflow command."""
    if isinstance(command, Amend):
        action = f"{command.kind}.amend"
        return action if action in ACTIONS else "session.amend"
    return WRITES[type(command)]


def target_of(command: Command) -> str | None:
    """The record a command names (None for a new session: its id is made when decided)."""
    for name in ("exit", "session", "concern", "id"):
        value = getattr(command, name, None)
        if isinstance(value, str):
            return clean_target(value)
    return None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry before it is chained (`stepout.domain.audit_trail.AuditEntry`)."""

    actor: str  # a user id, `room:<practice>/<room>`, `cli:<os user>`, or `anonymous`
    action: str  # one of ACTIONS
    outcome: Outcome
    origin: str  # the client's IP address, or `cli`
    channel: Channel
    practice: str | None = None
    target: str | None = None  # a record id, a date, `list`; never free text
    count: int | None = None  # how many records a list read returned

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action}")
        if self.target is not None and clean_target(self.target) is None:
            raise ValueError("an audit target is an id, never free text")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, and from where: what every audit record of a request shares."""

    actor: str
    practice: str | None
    origin: str
    channel: Channel

    def record(
        self,
        action: str,
        target: str | None = None,
        *,
        outcome: Outcome = "ok",
        count: int | None = None,
        practice: str | None = None,
    ) -> AuditRecord:
        return AuditRecord(
            actor=self.actor,
            action=action,
            outcome=outcome,
            origin=self.origin,
            channel=self.channel,
            practice=practice if practice is not None else self.practice,
            target=clean_target(target),
            count=count,
        )


def room_actor(practice: str, room: str) -> str:
    return f"room:{practice}/{room}"


def cli_caller(practice: str | None = None) -> Caller:
    """The operator at the command line, named by their operating-system account."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Caller(f"cli:{user}", practice, CLI_ORIGIN, "cli")


class AuditTrail(Protocol):
    """A unit of work's audit trail: records appended in its transaction."""

    def record(self, entry: AuditRecord) -> None:
        """Chain `entry` onto the trail now, in this unit of work's transaction."""

    def at_commit(self, entry: AuditRecord | Callable[[], AuditRecord]) -> None:
        """Record `entry` (or what the callable returns then) when the unit of work commits,
        just before, in the same transaction; nothing if it never commits."""


class AuditedUnitOfWork(Protocol):
    @property
    def audit(self) -> AuditTrail: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


def write_alone(uow: Callable[[], AuditedUnitOfWork], entry: AuditRecord) -> None:
    """Record `entry` in a short writing transaction of its own (raises if it cannot: then the
    data it is about is not returned)."""
    with uow() as unit:
        unit.audit.record(entry)
        unit.commit()


def audit_import(
    unit: AuditedUnitOfWork, caller: Caller, progress: Callable[[int], None] | None = None
) -> Callable[[int], None]:
    """Stage the `records.import` record of an import in `unit` (written as it commits, in
    the import's transaction) and return the progress callback to give `import_records`: the
    record's count is the lines read, as last told; `progress` is told too."""
    lines = [0]

    def told(n: int) -> None:
        lines[0] = n
        if progress is not None:
            progress(n)

    unit.audit.at_commit(lambda: caller.record("records.import", count=lines[0]))
    return told
