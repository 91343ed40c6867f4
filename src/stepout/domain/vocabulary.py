"""The named choices of the protocol, as used in records, events and the database."""

from typing import Final, Literal

Modality = Literal["in_person", "telehealth"]
Source = Literal["declared", "sensor"]
Reason = Literal["technical", "client_safety", "health_emergency", "other"]
ClientInformed = Literal["before_leaving", "after_return", "not_informed"]
Safeguard = Literal["records_secured", "screen_locked", "door_closed"]
EmsDecision = Literal["called", "not_needed"]

MODALITIES: Final = ("in_person", "telehealth")
SOURCES: Final = ("declared", "sensor")
REASONS: Final = ("technical", "client_safety", "health_emergency", "other")
CLIENT_INFORMED: Final = ("before_leaving", "after_return", "not_informed")
SAFEGUARDS: Final = ("records_secured", "screen_locked", "door_closed")
EMS_DECISIONS: Final = ("called", "not_needed")

# Every CPT code Stepout knows. 90785 (interactive complexity) is an add-on, not time-based.
TIME_BASED_CODES: Final = frozenset(
    {"90832", "90833", "90834", "90836", "90837", "90838", "90839", "90840"}
)
KNOWN_CODES: Final = TIME_BASED_CODES | {"90785"}
