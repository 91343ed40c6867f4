"""Amending an exit: the form shows the recorded values; what the user changed, with a note,
becomes one Amend command (kept beside the original, as a clinical addendum is)."""

from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Form, Request, Response

from stepout.domain.commands import Amend
from stepout.domain.instants import MICROS_PER_MINUTE, format_instant, from_datetime
from stepout.domain.records import Exit
from stepout.web.pages import wording
from stepout.web.pages.common import text, zone_of
from stepout.web.pages.exits import act, refused
from stepout.web.pages.routing import page_router
from stepout.web.pages.templating import zoned
from stepout.web.reading import visible_exit
from stepout.web.security import CheckedSession, State, require

router = page_router()

BAD_VALUES = "Check the amendment: times as HH:MM, texts up to 2000 letters."
NO_NOTE = "Add a note saying why you amend the exit."

CHOICES = {
    "reason": set(wording.REASONS),
    "client_informed": {"before_leaving", "after_return", "not_informed"},
    "ems": {"called", "not_needed"},
}


def returned_at(value: str, x: Exit, zone: str) -> str | None:
    """The return time `HH:MM` (practice time) as an instant on the day of the leaving (the
    next day if that would put it before the leaving)."""
    hours, _, minutes = value.strip().partition(":")
    at = time(int(hours), int(minutes))
    left = zoned(x.left_at, zone)
    moment = datetime.combine(left.date(), at, tzinfo=left.tzinfo)
    if from_datetime(moment) < x.left_at - MICROS_PER_MINUTE:
        moment += timedelta(days=1)
    return format_instant(from_datetime(moment))


def changes_of(form: dict[str, str], x: Exit, zone: str) -> dict[str, Any]:
    """The fields whose submitted value differs from the record (ValueError for a bad one)."""
    wanted: dict[str, Any] = {}
    for name in ("reason", "client_informed", "ems"):
        value = form[name] or None
        if value is not None and value not in CHOICES[name]:
            raise ValueError(name)
        wanted[name] = value
    wanted["explanation"] = text(form["explanation"])
    wanted["reason_note"] = text(form["reason_note"])
    wanted["client_attended_by"] = text(form["client_attended_by"], 200)
    if form["returned"].strip():
        wanted["returned_at"] = returned_at(form["returned"], x, zone)
        recorded = None if x.returned_at is None else format_instant(x.returned_at)
        if recorded is not None and wanted["returned_at"][:16] == recorded[:16]:
            del wanted["returned_at"]  # the same minute: not a change
    return {name: value for name, value in wanted.items() if getattr(x, name) != value}


@router.post("/console/exits/{exit_id}/amend")
def amend_exit(
    request: Request,
    state: State,
    session: CheckedSession,
    exit_id: str,
    note: Annotated[str, Form(max_length=4000)] = "",
    reason: Annotated[str, Form(max_length=40)] = "",
    reason_note: Annotated[str, Form(max_length=4000)] = "",
    explanation: Annotated[str, Form(max_length=4000)] = "",
    client_informed: Annotated[str, Form(max_length=40)] = "",
    client_attended_by: Annotated[str, Form(max_length=400)] = "",
    ems: Annotated[str, Form(max_length=20)] = "",
    returned: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    user = session.user
    require(user, "record.amend")
    with state.db.uow(read_only=True) as uow:
        x, _ = visible_exit(uow.records, user, exit_id)
    form = {
        "reason": reason,
        "reason_note": reason_note,
        "explanation": explanation,
        "client_informed": client_informed,
        "client_attended_by": client_attended_by,
        "ems": ems,
        "returned": returned,
    }
    try:
        why = text(note)
        changes = changes_of(form, x, zone_of(state, user.practice))
    except ValueError:
        return refused(request, state, session, exit_id, BAD_VALUES)
    if why is None:
        return refused(request, state, session, exit_id, NO_NOTE)
    if not changes:
        return refused(request, state, session, exit_id, "Nothing was changed.")
    return act(
        request,
        state,
        session,
        exit_id,
        lambda u: Amend(
            practice=u.practice, actor=u.id, kind="exit", id=exit_id, changes=changes, note=why
        ),
        "record.amend",
    )
