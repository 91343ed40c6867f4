"""Run a workflow command for the web edge, with its audit record, and tell the live streams
what changed."""

from collections.abc import Callable

from stepout.domain.commands import Command
from stepout.services.ports import Records
from stepout.services.workflow import Outcome
from stepout.web import audit
from stepout.web.live import room_topic, therapist_topic
from stepout.web.state import AppState


def perform(
    state: AppState, command: Command, *, check: Callable[[Records], object] | None = None
) -> Outcome:
    """Decide and store `command` (raises `ProtocolError` when refused), after `check` (the
    caller's access check, in the same transaction), with the request's audit record in that
    transaction too (a refused or failed command is recorded on its own); after the commit,
    notify the session's room display and its therapist's screens."""
    try:
        outcome = state.workflow.run(command, check=check, caller=audit.command_caller(command))
    except Exception as error:
        audit.record_failure(state, command, error)
        raise
    audit.current().recorded = True
    if outcome.changed:
        s = outcome.session
        state.notifier.notify(
            (room_topic(s.practice, s.room), therapist_topic(s.practice, s.therapist))
        )
    return outcome
