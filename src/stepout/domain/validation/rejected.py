"""A whole input refused: an import is all or nothing, so its errors come back together."""

from typing import ClassVar, Final, Generic, TypeVar

SHOWN_ERRORS: Final = 20  # how many errors the message lists; `errors` holds them all

E = TypeVar("E")


class Rejected(Exception, Generic[E]):
    """The input had errors; nothing was stored. `errors` holds all of them, in input order;
    `what` names the input in the message."""

    what: ClassVar[str] = "input"

    def __init__(self, errors: list[E]) -> None:
        super().__init__(errors)
        self.errors = errors

    def __str__(self) -> str:
        shown = "\n".join(str(e) for e in self.errors[:SHOWN_ERRORS])
        more = len(self.errors) - SHOWN_ERRORS
        tail = f"\n... and {more} more" if more > 0 else ""
        return f"{self.what} rejected, {len(self.errors)} errors, nothing stored:\n{shown}{tail}"
