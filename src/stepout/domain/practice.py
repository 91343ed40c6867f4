"""A practice: the tenant every record belongs to."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Practice:
    id: str
    name: str
    timezone: str = "UTC"  # IANA name; `--from/--to` dates are read in it
