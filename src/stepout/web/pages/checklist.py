"""What an exit still lacks for the protocol, in the order a therapist would fix it. Pure."""

from dataclasses import dataclass
from typing import Literal

from stepout.domain.records import Exit
from stepout.web.pages.wording import SAFEGUARDS


@dataclass(frozen=True, slots=True)
class Missing:
    key: str  # "reason", "informed", "ems", "attendant", "check_in", "safeguard:<name>"
    label: str
    level: Literal["needed", "advised"]  # a violation of the protocol, or a warning


def missing(x: Exit) -> list[Missing]:
    out: list[Missing] = []
    if x.reason is None:
        out.append(Missing("reason", "No reason is recorded for this exit.", "needed"))
    if x.client_informed == "not_informed" or not (x.explanation or "").strip():
        out.append(Missing("informed", "What the client was told is not recorded.", "needed"))
    elif x.client_informed == "after_return" and x.reason in ("technical", "other"):
        out.append(
            Missing(
                "informed_late",
                "For this reason the client should be told before you leave.",
                "needed",
            )
        )
    for name, label in SAFEGUARDS.items():
        if name not in x.safeguards:
            out.append(Missing(f"safeguard:{name}", f"Not confirmed: {label.lower()}.", "needed"))
    if x.reason == "health_emergency" and x.ems is None:
        out.append(Missing("ems", "No decision about emergency services.", "needed"))
    if x.client_attended_by is None and x.reason in ("health_emergency", "client_safety"):
        level: Literal["needed", "advised"] = (
            "needed" if x.reason == "health_emergency" else "advised"
        )
        out.append(Missing("attendant", "No one is recorded as staying with the client.", level))
    if x.returned_at is not None and not x.checked_in:
        out.append(Missing("check_in", "No check-in with the client after your return.", "advised"))
    return out
