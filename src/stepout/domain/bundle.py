"""A session bundle: one session with everything recorded against it."""

from dataclasses import dataclass

from stepout.domain.records import Concern, Exit, Session


@dataclass(frozen=True, slots=True)
class SessionBundle:
    """One session with everything recorded against it: the unit the rules judge."""

    session: Session
    exits: tuple[Exit, ...] = ()
    concerns: tuple[Concern, ...] = ()
