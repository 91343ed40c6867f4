"""The words the pages use for the protocol's choices, and the sentence suggested to the
therapist for each reason (what to say to the client; always editable)."""

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ReasonWords:
    label: str  # the button
    hint: str  # under the button
    phrase: str  # in the addendum: "I stepped out ... (<phrase>)"
    suggested: str  # what to say to the client
    minutes: int | None  # the expected minutes chosen at first (None: not sure)


REASONS: Final[dict[str, ReasonWords]] = {
    "technical": ReasonWords(
        "Technical problem",
        "Connection, equipment, the room or the building",
        "a technical or facility problem",
        "I need to step out for a moment to sort out a technical problem. "
        "I'll be back in a few minutes.",
        5,
    ),
    "client_safety": ReasonWords(
        "Client safety",
        "Something needs attention to keep the client safe",
        "a concern for the client's safety",
        "I'm stepping out for a moment to make sure you are safe. I'll be right back.",
        5,
    ),
    "health_emergency": ReasonWords(
        "Health emergency",
        "Call for help; someone stays with the client",
        "a health emergency",
        "I'm going to get help right away. Someone will stay with you, "
        "and I'll be back as soon as I can.",
        None,
    ),
    "other": ReasonWords(
        "Other",
        "Anything else (add a short note)",
        "another reason",
        "I need to step out for a moment. I'll be back shortly.",
        5,
    ),
}

SAFEGUARDS: Final[dict[str, str]] = {
    "records_secured": "Records put away",
    "screen_locked": "Screen locked",
    "door_closed": "Door closed",
}
SAFEGUARD_PHRASES: Final[dict[str, str]] = {
    "records_secured": "records secured",
    "screen_locked": "screen locked",
    "door_closed": "door closed",
}

EMS: Final[dict[str, str]] = {
    "called": "Emergency services called",
    "not_needed": "Emergency services not needed",
}

QUICK_MINUTES: Final = (2, 5, 10)

ATTENDANT_SUGGESTIONS: Final = ("Reception", "A colleague", "A family member", "Security")

QUICK_CODES: Final = ("90832", "90834", "90837", "90785")
MORE_CODES: Final = ("90833", "90836", "90838", "90839", "90840")
CODE_LABELS: Final[dict[str, str]] = {
    "90832": "90832 (16+)",
    "90834": "90834 (38+)",
    "90837": "90837 (53+)",
    "90785": "90785 add-on",
    "90833": "90833 E/M (16+)",
    "90836": "90836 E/M (38+)",
    "90838": "90838 E/M (53+)",
    "90839": "90839 crisis (30+)",
    "90840": "90840 crisis add-on",
}

MODALITIES: Final[dict[str, str]] = {"in_person": "In person", "telehealth": "Telehealth"}


def reason_label(reason: str | None) -> str:
    if reason is None:
        return "No reason recorded"
    words = REASONS.get(reason)
    return words.label if words is not None else reason
