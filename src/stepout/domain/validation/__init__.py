"""Check one record of the JSON Lines interchange on its own, and normalise it.

The rules are DESIGN.md's "Records interchange": required fields, no unknown fields, types and
choices, timestamps ISO 8601 with an offset, a session's `end` after its `start`, an exit's
`returned_at` not before its `left_at`, billed codes Stepout knows. Omitted optional fields take
their defaults. Checks across records (duplicate ids, references, existing records) belong to
`stepout.services.importing`.

Messages name the field and what is wrong, never the value: free text is health data.

Written by hand for speed (an import checks millions of records): precomputed sets, one
function per kind, and a bounded memo of parsed timestamps (sessions start on the hour, so most
timestamps repeat).
"""

from typing import Any

from stepout.domain.validation.fields import _KIND_MSG
from stepout.domain.validation.kinds import _CHECKERS
from stepout.domain.validation.types import KINDS, Checked, Errors, LineError

__all__ = ["KINDS", "Checked", "LineError", "check_record", "validate_record"]


def check_record(obj: Any, line: int, errs: Errors) -> Checked | None:
    """Check one parsed JSON value. On success the checked record; otherwise None, with every
    problem of the record appended to `errs`."""
    try:
        checker = _CHECKERS[obj["kind"]]
    except (TypeError, KeyError):  # not an object, no kind, or not a kind
        if type(obj) is not dict:
            errs.append(LineError(line, "json", "must be a JSON object"))
        else:
            message = _KIND_MSG if "kind" in obj else "is required"
            errs.append(LineError(line, "kind", message))
        return None
    return checker(obj, line, errs)


def validate_record(obj: object, line: int) -> tuple[dict[str, Any] | None, list[LineError]]:
    """One parsed JSON value -> (the normalised record, every optional field filled with its
    default; or None) and the problems found, each naming `line`."""
    errs: Errors = []
    checked = check_record(obj, line, errs)
    if checked is None:
        return None, errs
    return {"kind": checked.kind, "id": checked.id, **checked.data}, errs
