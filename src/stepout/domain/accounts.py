"""Who may use Stepout: staff accounts with one role each, the rooms of a practice, and what a
practice tells a client left alone in a room. Plain data; storage and hashing live elsewhere."""

from dataclasses import dataclass
from typing import Final, Literal

# `integration`: a system, not a person (a video platform reporting who is on a call). It may
# report presence and nothing else: no reading of sessions, no workflow, no pages.
Role = Literal["admin", "supervisor", "therapist", "biller", "integration"]
ROLES: Final = ("admin", "supervisor", "therapist", "biller", "integration")


@dataclass(frozen=True, slots=True)
class User:
    """A staff account. A therapist's `id` is the therapist id their sessions carry."""

    id: str
    practice: str
    username: str
    role: Role
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Room:
    practice: str
    id: str  # the room id sessions carry
    name: str


@dataclass(frozen=True, slots=True)
class HelpText:
    """What the room display tells a client to do if they feel unwell or unsafe."""

    call_button: str = "Press the call button by the door."
    reception: str = "Reception can be reached on the room phone."
    emergency: str = "In an emergency, call 911."


DEFAULT_HELP: Final = HelpText()
