"""What a check returns: the error of one field on one line, and a record that passed."""

from dataclasses import dataclass
from typing import Any, Final

from stepout.domain.instants import Instant

KINDS: Final = ("session", "exit", "concern")


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass(slots=True)
class Checked:
    """A record that passed every check of its own, with what the import service needs."""

    kind: str
    id: str
    data: dict[str, Any]  # the normalised record without `kind` and `id`: an event's data
    ref: str  # a session's practice; the session of an exit or a concern
    at: Instant  # the record's main instant: start, left_at or raised_at
    end: Instant | None  # a session's end (None for exits and concerns)
    line: int


Errors = list[LineError]
