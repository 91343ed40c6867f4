"""Run a workflow command for the web edge and tell the live streams what changed."""

from collections.abc import Callable

from stepout.domain.commands import Command
from stepout.services.ports import Records
from stepout.services.workflow import Outcome
from stepout.web.live import room_topic, therapist_topic
from stepout.web.state import AppState


def perform(
    state: AppState, command: Command, *, check: Callable[[Records], object] | None = None
) -> Outcome:
    """Decide and store `command` (raises `ProtocolError` when refused), after `check` (the
    caller's access check, in the same transaction); after the commit, notify the session's
    room display and its therapist's screens."""
    outcome = state.workflow.run(command, check=check)
    if outcome.changed:
        s = outcome.session
        state.notifier.notify(
            (room_topic(s.practice, s.room), therapist_topic(s.practice, s.therapist))
        )
    return outcome
