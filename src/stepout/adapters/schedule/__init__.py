"""Schedule files in: CSV (`csvfile`), iCalendar (`ics`) and FHIR Bundles of Appointments
(`fhir`). Each reader turns a file into `stepout.domain.schedule.Raw` entries, one per
appointment, with the place it was read from; the checks common to every format are the
domain's, the checks against what is stored the service's (`stepout.services.schedule`).

Readers never keep free text: a calendar's SUMMARY, DESCRIPTION or LOCATION, a CSV's extra
columns, a FHIR Appointment's comments are not read (they may name a client or a condition).
"""

from pathlib import Path
from typing import Final, Literal

Format = Literal["csv", "ics", "fhir"]
SUFFIXES: Final[dict[str, Format]] = {".csv": "csv", ".ics": "ics", ".ical": "ics", ".json": "fhir"}


def format_of(path: Path) -> Format | None:
    """The format a file's name says, or None."""
    return SUFFIXES.get(path.suffix.lower())
