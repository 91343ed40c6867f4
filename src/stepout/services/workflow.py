"""The live workflow's command handlers: what the web app and the CLI call during a session.

Each command is one unit of work: load what the protocol needs through `uow.records`, let the
pure protocol (`stepout.domain.protocol.decide`) turn it into events at the clock's instant,
append them with `uow.ledger.append`, commit, and return the resulting record. A refused command
(`ProtocolError`) or a failed append leaves the `with` block without `commit()`, so nothing is
stored; a double tap the protocol treats as a no-op stores nothing either and returns the record
as it stands.

Roles (who may issue which command) are not checked here yet.

Given the `caller` (who, from where: `stepout.services.audit.Caller`), `run` also writes the
command's audit record in the same transaction as its events, so that neither is stored
without the other; it commits then even when the protocol had nothing to store (a double tap
is still a request that was made and answered).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

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
from stepout.domain.instants import Instant, now
from stepout.domain.protocol import Facts, decide
from stepout.domain.records import Concern, Exit, Session
from stepout.services import ids
from stepout.services.audit import Caller, action_of
from stepout.services.ports import Records, UnitOfWork

Clock = Callable[[], Instant]
UnitOfWorkFactory = Callable[[], UnitOfWork]
IdMaker = Callable[[str], str]
R = TypeVar("R", Session, Exit, Concern)

_PREFIXES: Final[dict[type, str]] = {
    StartSession: ids.SESSION,
    DeclareExit: ids.EXIT,
    DetectExit: ids.EXIT,
    RaiseConcern: ids.CONCERN,
}


def load_facts(records: Records, command: Command) -> Facts:
    """The records `command` is decided on. Nothing of another practice is read beyond the
    record the command names (which the protocol then treats as not found)."""
    mine = command.practice
    match command:
        case StartSession() if command.appointment is not None:
            # The session of that id, if one exists already: the appointment has started.
            a = records.appointment(command.appointment)
            started = None if a is None else records.session(a.id)
            return Facts(practice=records.practice(mine), appointment=a, session=started)
        case StartSession():
            return Facts(practice=records.practice(mine))
        case DeclareExit():
            s = records.session(command.session)
            if s is None or s.practice != mine:
                return Facts(session=s)
            return Facts(session=s, open_exit=records.open_exit_of_therapist(mine, s.therapist))
        case DetectExit() | SensorReturn():
            s = records.session(command.session)
            if s is None or s.practice != mine:
                return Facts(session=s)
            exits = tuple(records.exits_of_session(s.id)) if isinstance(command, DetectExit) else ()
            out = records.open_exit_of_therapist(mine, s.therapist)
            return Facts(session=s, open_exit=out, exits=exits)
        case EndSession():
            s = records.session(command.session)
            if s is None or s.practice != mine:
                return Facts(session=s)
            return Facts(session=s, exits=tuple(records.exits_of_session(s.id)))
        case RaiseConcern():
            return Facts(session=records.session(command.session))
        case AcknowledgeConcern():
            return _concern_facts(records, command.concern)
        case Amend():
            if command.kind == "session":
                return Facts(session=records.session(command.id))
            if command.kind == "concern":
                return _concern_facts(records, command.id)
            return _exit_facts(records, command.id)
        case _:
            return _exit_facts(records, command.exit)


def _exit_facts(records: Records, exit_id: str) -> Facts:
    x = records.exit(exit_id)
    return Facts(exit=x, session=None if x is None else records.session(x.session))


def _concern_facts(records: Records, concern_id: str) -> Facts:
    c = records.concern(concern_id)
    return Facts(concern=c, session=None if c is None else records.session(c.session))


def _read(records: Records, entity: str, subject: str) -> Session | Exit | Concern | None:
    if entity == "session":
        return records.session(subject)
    if entity == "exit":
        return records.exit(subject)
    return records.concern(subject)


def _expect(kind: type[R], record: Session | Exit | Concern) -> R:
    if not isinstance(record, kind):
        raise TypeError(f"expected a {kind.__name__}, got a {type(record).__name__}")
    return record


@dataclass(frozen=True, slots=True)
class Outcome:
    record: Session | Exit | Concern
    session: Session
    changed: bool


class Workflow:
    """The handlers, bound to a unit-of-work factory, a clock and an id maker."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock = now, new_id: IdMaker = ids.new_id
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._new_id = new_id

    def handle(self, command: Command) -> Session | Exit | Concern:
        """Decide `command`, store its events in one unit of work, return the record."""
        return self.run(command).record

    def run(
        self,
        command: Command,
        *,
        check: Callable[[Records], object] | None = None,
        caller: Caller | None = None,
    ) -> Outcome:
        """As `handle`, also returning the session the record belongs to and whether anything
        changed (the live updates of the web edge go to that session's room and therapist).
        `check` runs first in the same unit of work: the caller's access check, which raises
        to refuse (nothing is stored). With `caller`, the audit record of the command is
        written in the same transaction (target: the record, e.g. the new exit's id)."""
        prefix = _PREFIXES.get(type(command))
        with self._uow() as uow:
            if check is not None:
                check(uow.records)
            facts = load_facts(uow.records, command)
            new_id = None if prefix is None else self._new_id(prefix)
            decision = decide(command, facts, at=self._clock(), new_id=new_id)
            if decision.events:
                uow.ledger.append(decision.events)
            record = _read(uow.records, decision.entity, decision.subject)
            if record is None:  # the ledger accepted events it did not project
                raise LookupError(f"{decision.entity} {decision.subject} was not stored")
            session = record if isinstance(record, Session) else uow.records.session(record.session)
            if session is None:
                raise LookupError(f"the session of {decision.entity} {decision.subject} is gone")
            if caller is not None:
                uow.audit.record(
                    caller.record(action_of(command), record.id, practice=command.practice)
                )
            if decision.events or caller is not None:
                uow.commit()
        return Outcome(record, session, bool(decision.events))

    def start_session(self, cmd: StartSession) -> Session:
        return _expect(Session, self.handle(cmd))

    def end_session(self, cmd: EndSession) -> Session:
        return _expect(Session, self.handle(cmd))

    def declare_exit(self, cmd: DeclareExit) -> Exit:
        return _expect(Exit, self.handle(cmd))

    def inform_client(self, cmd: InformClient) -> Exit:
        return _expect(Exit, self.handle(cmd))

    def confirm_safeguard(self, cmd: ConfirmSafeguard) -> Exit:
        return _expect(Exit, self.handle(cmd))

    def decide_ems(self, cmd: DecideEms) -> Exit:
        return _expect(Exit, self.handle(cmd))

    def arrange_attendant(self, cmd: ArrangeAttendant) -> Exit:
        return _expect(Exit, self.handle(cmd))

    def return_(self, cmd: Return) -> Exit:
        return _expect(Exit, self.handle(cmd))

    def check_in(self, cmd: CheckIn) -> Exit:
        return _expect(Exit, self.handle(cmd))

    def sign_exit(self, cmd: SignExit) -> Exit:
        return _expect(Exit, self.handle(cmd))

    def classify_exit(self, cmd: ClassifyExit) -> Exit:
        return _expect(Exit, self.handle(cmd))

    def raise_concern(self, cmd: RaiseConcern) -> Concern:
        return _expect(Concern, self.handle(cmd))

    def acknowledge_concern(self, cmd: AcknowledgeConcern) -> Concern:
        return _expect(Concern, self.handle(cmd))

    def amend(self, cmd: Amend) -> Session | Exit | Concern:
        return self.handle(cmd)
