"""Exits and concerns of a synthetic session: what happened (an `ExitPlan`), then where it sits
in the session (`exit_records`). Every number here is documented in docs/synthetic-data.md.

Instants are whole seconds since the epoch (UTC); `Clock.text` turns them into ISO 8601.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from stepout.domain.vocabulary import SAFEGUARDS, ClientInformed, EmsDecision, Reason, Source
from stepout.synthetic.practice import Clock

MINUTE, HOUR, DAY = 60, 3600, 86_400
T = TypeVar("T")

EXPLANATIONS: dict[str | None, tuple[str, ...]] = {
    "technical": (
        "I need to step out for a minute to fix the video connection; I will be right back.",
        "The fire alarm panel is beeping; I will check it and come straight back.",
        "My screen froze; I am switching to the backup laptop and will be back in two minutes.",
        "The room is too cold; I will ask the front desk to fix the heating and return.",
    ),
    "client_safety": (
        "I am going to get a colleague so that we can keep you safe; I will be right back.",
        "I am stepping out to call your emergency contact, as we agreed; back in a few minutes.",
    ),
    "health_emergency": (
        "You look unwell; I am getting help and someone will stay with you.",
        "I am fetching the first-aid kit and calling for help; please stay seated.",
        "I feel unwell and need to step out; a colleague will sit with you.",
    ),
    "other": (
        "I need to take an urgent call from the front desk; I will be back shortly.",
        "A delivery needs my signature; I will be right back.",
    ),
}
EXPLANATIONS[None] = EXPLANATIONS["technical"]
NOTES: dict[str | None, tuple[str, ...]] = {
    "technical": ("Video link dropped twice.", "Alarm panel fault reported to facilities."),
    "client_safety": ("Followed the practice safety plan.", "Colleague joined the session."),
    "health_emergency": ("First aid given.", "Client rested in the waiting area."),
    "other": ("Front desk asked for help.", "Personal matter that could not wait."),
    None: ("Stepped out.",),
}
ATTENDANTS = ("front-desk staff", "on-call colleague", "practice nurse", "co-therapist")
CONCERNS = (
    "My therapist left the session and I did not know why.",
    "I waited alone for a long time and felt uneasy.",
    "Nobody told me when the session would continue.",
    "The session was interrupted twice and we ran out of time.",
    "I would like to understand what happened when the session stopped.",
)

REASON_MIX: tuple[tuple[Reason, float], ...] = (
    ("technical", 0.60),
    ("client_safety", 0.17),
    ("health_emergency", 0.15),
    ("other", 0.08),
)
SENSOR_SHARE, UNCLASSIFIED_SHARE, NO_REASON_SHARE = 0.08, 0.40, 0.01
ABSENCE: dict[str | None, tuple[float, float]] = {  # log-normal minutes: (median, sigma)
    "technical": (2.5, 0.55),
    "client_safety": (7.0, 0.50),
    "health_emergency": (12.0, 0.60),
    "other": (4.0, 0.60),
    None: (3.0, 0.80),
}
MIN_ABSENCE = 20  # seconds
NEVER_RETURNED: dict[str | None, float] = {"health_emergency": 0.08}  # other reasons: 0.01
# (told how, explanation given): routine reasons (technical, other, none), then urgent ones.
INFORMED_ROUTINE: tuple[tuple[tuple[ClientInformed, bool], float], ...] = (
    (("before_leaving", True), 0.85),
    (("after_return", True), 0.05),
    (("not_informed", False), 0.05),
    (("before_leaving", False), 0.05),  # told, but no words recorded
)
INFORMED_URGENT: tuple[tuple[tuple[ClientInformed, bool], float], ...] = (
    (("before_leaving", True), 0.55),
    (("after_return", True), 0.35),
    (("not_informed", False), 0.05),
    (("before_leaving", False), 0.05),
)
SENSOR_NOT_INFORMED = 0.25
SAFEGUARD_MIX: tuple[tuple[tuple[str, ...], float], ...] = (
    (SAFEGUARDS, 0.90),
    (SAFEGUARDS[:2], 0.08),  # two of three: which one is missing is drawn uniformly
    ((), 0.02),
)
NOTE_SHARE = 0.20  # a reason note on exits other than `other` (which always has one)
ATTENDED: dict[str | None, float] = {"health_emergency": 0.90, "client_safety": 0.70}
EMS: dict[str | None, tuple[tuple[EmsDecision | None, float], ...]] = {
    "health_emergency": (("called", 0.45), ("not_needed", 0.47), (None, 0.08)),
    "client_safety": (("called", 0.15), ("not_needed", 0.60), (None, 0.25)),
    None: (("not_needed", 0.02), (None, 0.98)),  # technical, other and no reason
}
CHECKED_IN = 0.93
SIGNED = (  # (share, earliest, latest) after the session's end; the rest: never signed
    (0.70, MINUTE, 2 * HOUR),
    (0.18, 2 * HOUR, 23 * HOUR + 30 * MINUTE),
    (0.08, 25 * HOUR, 7 * DAY),
)
EXITS_PER_SESSION: tuple[tuple[int, float], ...] = ((1, 0.93), (2, 0.06), (3, 0.01))
CONCERN_WITH_EXIT, CONCERN_WITHOUT_EXIT = 0.10, 0.006
CONCERN_RAISED = (10 * MINUTE, 48 * HOUR)  # after the session's end
ACKNOWLEDGED = ((0.82, HOUR, 70 * HOUR), (0.12, 76 * HOUR, 10 * DAY))  # the rest: never


@dataclass(frozen=True, slots=True)
class ExitPlan:
    source: Source = "declared"
    reason: Reason | None = "technical"
    note: bool = False
    absence: int = 2 * MINUTE  # seconds
    returned: bool = True
    informed: ClientInformed = "before_leaving"
    explained: bool = True
    safeguards: tuple[str, ...] = SAFEGUARDS
    attended: bool = False
    ems: EmsDecision | None = None
    checked_in: bool = True
    sign_delay: int | None = 30 * MINUTE  # after the session's end; None: never signed


# A sensor exit nobody has classified: nothing declared, nothing signed.
UNCLASSIFIED = ExitPlan(
    source="sensor",
    reason=None,
    informed="not_informed",
    explained=False,
    safeguards=(),
    checked_in=False,
    sign_delay=None,
)


def _pick(rnd: random.Random, table: Sequence[tuple[T, float]]) -> T:
    """A value by its share; the last value takes whatever the shares leave."""
    u = rnd.random()
    for value, share in table:
        if u < share:
            return value
        u -= share
    return table[-1][0]


def _within(rnd: random.Random, bands: Sequence[tuple[float, int, int]]) -> int | None:
    """A delay (seconds) from the band the draw falls in; None past the last band."""
    u = rnd.random()
    for share, low, high in bands:
        if u < share:
            return rnd.randint(low, high)
        u -= share
    return None


def draw_plans(rnd: random.Random) -> list[ExitPlan]:
    """The exits of a session that has at least one."""
    return [draw_plan(rnd) for _ in range(_pick(rnd, EXITS_PER_SESSION))]


def draw_plan(rnd: random.Random) -> ExitPlan:
    rand = rnd.random
    sensor = rand() < SENSOR_SHARE
    if sensor and rand() < UNCLASSIFIED_SHARE:
        return replace(UNCLASSIFIED, absence=_absence(rnd, None))
    reason: Reason | None = None
    if sensor or rand() >= NO_REASON_SHARE:
        reason = _pick(rnd, REASON_MIX)
    urgent = reason in ("client_safety", "health_emergency")
    informed, explained = _pick(rnd, INFORMED_URGENT if urgent else INFORMED_ROUTINE)
    if sensor and rand() < SENSOR_NOT_INFORMED:
        informed, explained = "not_informed", False
    safeguards = _pick(rnd, SAFEGUARD_MIX)
    if len(safeguards) == 2:
        missing = rnd.randrange(3)
        safeguards = SAFEGUARDS[:missing] + SAFEGUARDS[missing + 1 :]
    returned = rand() >= NEVER_RETURNED.get(reason, 0.01)
    return ExitPlan(
        source="sensor" if sensor else "declared",
        reason=reason,
        note=reason == "other" or rand() < NOTE_SHARE,
        absence=_absence(rnd, reason),
        returned=returned,
        informed=informed,
        explained=explained,
        safeguards=safeguards,
        attended=rand() < ATTENDED.get(reason, 0.03),
        ems=_pick(rnd, EMS.get(reason, EMS[None])),
        checked_in=returned and rand() < CHECKED_IN,
        sign_delay=_within(rnd, SIGNED),
    )


def _absence(rnd: random.Random, reason: Reason | None) -> int:
    median, sigma = ABSENCE[reason]
    return max(MIN_ABSENCE, round(median * MINUTE * rnd.lognormvariate(0.0, sigma)))


def exit_records(
    plans: Sequence[ExitPlan],
    session: str,
    start: int,
    end: int,
    first_id: int,
    clock: Clock,
    rnd: random.Random,
) -> list[dict[str, Any]]:
    """Place the exits one per equal part of the session, each inside its part; only the last
    may never return. `first_id` numbers them (`e-0000001`)."""
    records = []
    part = (end - start) // len(plans)
    for i, plan in enumerate(plans):
        low = start + i * part + MINUTE
        high = start + (i + 1) * part if i < len(plans) - 1 else end
        absence = max(MIN_ABSENCE, min(plan.absence, high - low - MINUTE))
        left = low + rnd.randrange(max(1, high - low - absence))
        last = i == len(plans) - 1
        returned = left + absence if plan.returned or not last else None
        reason = plan.reason
        if plan.explained:
            explanation: str | None = rnd.choice(EXPLANATIONS[reason])
        else:
            explanation = None if plan.source == "sensor" or rnd.random() < 0.5 else ""
        records.append(
            {
                "kind": "exit",
                "id": f"e-{first_id + i:07d}",
                "session": session,
                "source": plan.source,
                "reason": reason,
                "reason_note": rnd.choice(NOTES[reason]) if plan.note else None,
                "left_at": clock.text(left),
                "returned_at": None if returned is None else clock.text(returned),
                "client_informed": plan.informed,
                "explanation": explanation,
                "safeguards": list(plan.safeguards),
                "client_attended_by": rnd.choice(ATTENDANTS) if plan.attended else None,
                "ems": plan.ems,
                "checked_in": plan.checked_in and returned is not None,
                "signed_at": None if plan.sign_delay is None else clock.text(end + plan.sign_delay),
            }
        )
    return records


@dataclass(frozen=True, slots=True)
class Scripted:
    """A sure case, placed in one of t-001's first sessions (53 minutes, billed 90837)."""

    plans: tuple[ExitPlan, ...]
    concern: bool = False
    ack_after: int | None = None  # seconds after raising; None: never acknowledged


def concern_record(
    rnd: random.Random, clock: Clock, kid: int, session: str, end: int, script: Scripted | None
) -> dict[str, Any]:
    """A concern raised after the session; acknowledged after a drawn delay, or as scripted."""
    raised = end + rnd.randint(*CONCERN_RAISED)
    delay = _within(rnd, ACKNOWLEDGED) if script is None else script.ack_after
    return {
        "kind": "concern",
        "id": f"k-{kid:07d}",
        "session": session,
        "raised_at": clock.text(raised),
        "text": rnd.choice(CONCERNS),
        "acknowledged_at": None if delay is None else clock.text(raised + delay),
    }


_CLEAN = ExitPlan()
_EMERGENCY = replace(
    _CLEAN, reason="health_emergency", absence=10 * MINUTE, attended=True, ems="called"
)
# One sure case of every rule; every scripted session also hits `billed-code-unsupported`
# (any exit takes a 53-minute session below the 53 minutes 90837 needs).
SCRIPT: tuple[Scripted, ...] = (
    Scripted((replace(_CLEAN, reason="other", note=True),), True),  # reason-not-exceptional
    Scripted((replace(_CLEAN, informed="not_informed", explained=False),), True, 5 * DAY),
    Scripted((replace(_CLEAN, absence=9 * MINUTE),)),  # absence-too-long
    Scripted((replace(_CLEAN, safeguards=SAFEGUARDS[:2]),)),  # confidentiality-incomplete
    Scripted((replace(_EMERGENCY, attended=False),)),  # client-unattended
    Scripted((replace(_EMERGENCY, ems=None),)),  # ems-decision-missing
    Scripted((replace(_CLEAN, checked_in=False),)),  # no-check-in
    Scripted((replace(_CLEAN, sign_delay=None),)),  # documentation-late: never signed
    Scripted((replace(_CLEAN, sign_delay=3 * DAY),)),  # documentation-late: signed late
    Scripted((_CLEAN, _CLEAN)),  # repeated-exits
    Scripted((UNCLASSIFIED,)),  # undeclared-exit
    Scripted((_CLEAN,), True, DAY),  # a concern acknowledged in time
    Scripted((replace(_CLEAN, reason="client_safety", attended=True, returned=False),)),
    Scripted((replace(_CLEAN, source="sensor", reason="client_safety", attended=True),)),
)
