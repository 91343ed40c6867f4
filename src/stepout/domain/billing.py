"""Billed CPT codes reconciled against net face-to-face minutes.

Time-based codes and the net minutes each needs:

| family | codes (minimum minutes) |
|---|---|
| psychotherapy | 90832 (16), 90834 (38), 90837 (53) |
| psychotherapy with an E/M visit | 90833 (16), 90836 (38), 90838 (53) |
| crisis | 90839 (30); the k-th unit of 90840 needs 75 + 30 * (k - 1) |

90785 (interactive complexity) is an add-on and not time-based; any other code (an E/M code,
say) is not Stepout's to judge and is ignored. A repeated 90840 in the billed codes is another
unit; units are numbered in billed order.

Status, first match wins:
- `unsupported`: some billed code (or 90840 unit) needs more minutes than the net.
- `undercoded`: the minutes reach a higher code of a billed family (or 90839 or more 90840
  units when the crisis family is billed).
- `supported`: a time-based code was billed and none of the above holds.
- `not_billed`: no time-based code was billed.
So `status == "unsupported"` exactly when `unsupported_codes` is not empty.

Odd cases, decided here:
- 90840 billed without 90839: each unit is judged on its own minimum (75, 105, ...), and the
  family counts as billed, so `supported_codes` shows 90839 when the minutes reach 30 and the
  session is `undercoded` (the primary crisis code is missing) unless a unit is unsupported.
- Two codes of one family (90832 and 90837, or 90839 twice): each is judged on its own
  minimum; `supported_codes` still carries one code for the family, the highest the minutes
  reach, and undercoding compares it with the highest code billed. Billing two codes of a family
  is a claim problem, not a time problem; a reader sees it as billed != supported.
- 90785 is echoed once in `supported_codes` however often it was billed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from stepout.domain.facetime import absent_micros
from stepout.domain.instants import MICROS_PER_MINUTE
from stepout.domain.records import Exit, Session

BillingStatus = Literal["unsupported", "undercoded", "supported", "not_billed"]

ADD_ON: Final = "90785"
CRISIS_PRIMARY: Final = "90839"
CRISIS_UNIT: Final = "90840"
CRISIS_PRIMARY_MINUTES: Final = 30
CRISIS_FIRST_UNIT_MINUTES: Final = 75
CRISIS_UNIT_STEP_MINUTES: Final = 30

# Ladders of the two graded families, as (minimum minutes, code), lowest first.
PSYCHOTHERAPY: Final = ((16, "90832"), (38, "90834"), (53, "90837"))
WITH_EM: Final = ((16, "90833"), (38, "90836"), (53, "90838"))
_LOW, _MID, _HIGH = (minimum for minimum, _ in PSYCHOTHERAPY)
assert tuple(minimum for minimum, _ in WITH_EM) == (_LOW, _MID, _HIGH)

_PSY, _EM, _PRIMARY, _UNIT, _ADD_ON = range(5)
# code -> (kind, minimum minutes); 90840's minimum depends on the unit and is computed.
_CODES: Final[dict[str, tuple[int, int]]] = {
    **{code: (_PSY, minimum) for minimum, code in PSYCHOTHERAPY},
    **{code: (_EM, minimum) for minimum, code in WITH_EM},
    CRISIS_PRIMARY: (_PRIMARY, CRISIS_PRIMARY_MINUTES),
    CRISIS_UNIT: (_UNIT, CRISIS_FIRST_UNIT_MINUTES),
    ADD_ON: (_ADD_ON, 0),
}
_UNIT_TUPLES: Final = tuple((CRISIS_UNIT,) * n for n in range(8))


def _rung(net: int) -> int:
    """How many rungs of a graded ladder the minutes reach (0-3); rung r is `ladder[r - 1]`."""
    return 0 if net < _LOW else 1 if net < _MID else 2 if net < _HIGH else 3


_RUNG_OF_MINIMUM: Final = {_LOW: 1, _MID: 2, _HIGH: 3}


def _units_reached(net: int) -> int:
    if net < CRISIS_FIRST_UNIT_MINUTES:
        return 0
    return (net - CRISIS_FIRST_UNIT_MINUTES) // CRISIS_UNIT_STEP_MINUTES + 1


def _unit_minimum(k: int) -> int:
    """Net minutes the k-th unit (1-based) of 90840 needs."""
    return CRISIS_FIRST_UNIT_MINUTES + CRISIS_UNIT_STEP_MINUTES * (k - 1)


def _units(n: int) -> tuple[str, ...]:
    return _UNIT_TUPLES[n] if n < len(_UNIT_TUPLES) else (CRISIS_UNIT,) * n


def _judge(billed: Sequence[str], net: int) -> tuple[tuple[str, ...], BillingStatus]:
    """Supported codes and status in one pass over the billed codes."""
    psy_top = em_top = -1  # highest rung billed per graded family; -1: family not billed
    primary = False
    units = 0
    add_on = False
    short = False
    for code in billed:
        entry = _CODES.get(code)
        if entry is None:
            continue
        kind, minimum = entry
        if kind == _PSY:
            psy_top = max(psy_top, _RUNG_OF_MINIMUM[minimum])
        elif kind == _EM:
            em_top = max(em_top, _RUNG_OF_MINIMUM[minimum])
        elif kind == _PRIMARY:
            primary = True
        elif kind == _UNIT:
            units += 1
            minimum = _unit_minimum(units)
        else:
            add_on = True
            continue
        if minimum > net:
            short = True

    rung = _rung(net)
    crisis = primary or units > 0
    time_based = psy_top >= 0 or em_top >= 0 or crisis
    supported: tuple[str, ...] = ()
    if (psy_top >= 0 or not time_based) and rung:
        supported = (PSYCHOTHERAPY[rung - 1][1],)
    if em_top >= 0 and rung:
        supported += (WITH_EM[rung - 1][1],)
    reached_units = 0
    if crisis:
        if net >= CRISIS_PRIMARY_MINUTES:
            supported += (CRISIS_PRIMARY,)
        reached_units = _units_reached(net)
        supported += _units(reached_units)
    if add_on:
        supported += (ADD_ON,)

    status: BillingStatus
    if short:
        status = "unsupported"
    elif (
        (psy_top >= 0 and rung > psy_top)
        or (em_top >= 0 and rung > em_top)
        or (crisis and ((not primary and net >= CRISIS_PRIMARY_MINUTES) or reached_units > units))
    ):
        status = "undercoded"
    elif time_based:
        status = "supported"
    else:
        status = "not_billed"
    return supported, status


def _short(billed: Sequence[str], net: int) -> tuple[str, ...]:
    """The billed codes needing more than `net` minutes, in billed order."""
    short: list[str] | None = None
    units = 0
    for code in billed:
        entry = _CODES.get(code)
        if entry is None:
            continue
        kind, minimum = entry
        if kind == _ADD_ON:
            continue
        if kind == _UNIT:
            units += 1
            minimum = _unit_minimum(units)
        if minimum > net:
            if short is None:
                short = []
            short.append(code)
    return () if short is None else tuple(short)


def minimum_net_minutes(billed_codes: Sequence[str]) -> int:
    """The fewest net minutes that support every billed code: `unsupported_codes` is empty
    exactly when `net >= minimum_net_minutes(billed_codes)`. 0 when nothing time-based is
    billed. Storage uses it to skip sessions that cannot be unsupported."""
    needed, units = 0, 0
    for code in billed_codes:
        entry = _CODES.get(code)
        if entry is None or entry[0] == _ADD_ON:
            continue
        minimum = entry[1]
        if entry[0] == _UNIT:
            units += 1
            minimum = _unit_minimum(units)
        needed = max(needed, minimum)
    return needed


# Judgments depend only on the billed codes and the minutes, and an audit meets few distinct
# pairs among millions of sessions: remember them. Only tuples are hashable keys; any other
# sequence is judged afresh.
_judge_cached = lru_cache(maxsize=1 << 14)(_judge)
_short_cached = lru_cache(maxsize=1 << 14)(_short)


def supported_codes(billed_codes: Sequence[str], net: int) -> tuple[str, ...]:
    """The codes `net` minutes support, family by family (psychotherapy, E/M, crisis), then 90785.

    For each billed family, the highest code (or the 90839 and 90840 units) the minutes reach,
    never a code of another family; with no time-based code billed, the psychotherapy code the
    minutes reach (nothing below 16 minutes). 90785 is echoed when billed.
    """
    if type(billed_codes) is tuple:
        return _judge_cached(billed_codes, net)[0]
    return _judge(billed_codes, net)[0]


def unsupported_codes(billed_codes: Sequence[str], net: int) -> tuple[str, ...]:
    """The billed time-based codes (or 90840 units) whose minimum exceeds `net`, in billed order.

    The k-th 90840 in the billed codes is the k-th unit and needs 75 + 30 * (k - 1) minutes.
    Empty when every billed code is supported; 90785 and unknown codes are never listed.
    """
    if type(billed_codes) is tuple:
        return _short_cached(billed_codes, net)
    return _short(billed_codes, net)


def billing_status(billed_codes: Sequence[str], net: int) -> BillingStatus:
    """`unsupported` over `undercoded` over `supported`; `not_billed` if nothing time-based."""
    if type(billed_codes) is tuple:
        return _judge_cached(billed_codes, net)[1]
    return _judge(billed_codes, net)[1]


@dataclass(frozen=True, slots=True)
class BillingLine:
    session: str
    gross_minutes: int
    net_minutes: int
    billed_codes: tuple[str, ...]
    supported_codes: tuple[str, ...]
    status: BillingStatus


def reconcile(session: Session, exits: Sequence[Exit]) -> BillingLine:
    """One session's billing line: gross and net minutes, billed vs supported codes, status.

    `exits` are the session's exits (an exit of another session is a caller's mistake and
    raises ValueError, as does a session still in progress).
    """
    start, end = session.start, session.end
    if end is None:
        raise ValueError(f"session {session.id} has no end: it cannot be billed yet")
    span = end - start if end > start else 0
    gross = span // MICROS_PER_MINUTE
    if not exits:
        net = gross
    else:
        for exit_ in exits:
            if exit_.session != session.id:
                raise ValueError(f"exit {exit_.id} is of session {exit_.session}, not {session.id}")
        if len(exits) == 1:  # clip the one exit in place: no list, no sort
            only = exits[0]
            lo = only.left_at if only.left_at > start else start
            back = only.returned_at
            hi = end if back is None or back > end else back
            absent = hi - lo if hi > lo else 0
        else:
            absent = absent_micros(start, end, [(e.left_at, e.returned_at) for e in exits])
        net = (span - absent) // MICROS_PER_MINUTE
    billed = session.billed_codes
    if type(billed) is tuple:
        supported, status = _judge_cached(billed, net)
    else:  # a list that slipped past the type checker: judge it, store a tuple
        billed = tuple(billed)
        supported, status = _judge(billed, net)
    return BillingLine(session.id, gross, net, billed, supported, status)
