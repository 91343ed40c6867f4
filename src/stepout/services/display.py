"""The room display's state, read from storage (see `stepout.domain.display`)."""

from stepout.domain.display import Display, room_display
from stepout.domain.instants import MICROS_PER_MINUTE, Instant
from stepout.services.ports import AccountsUnitOfWork

CONCERN_WINDOW_US = 15 * MICROS_PER_MINUTE


def read_display(uow: AccountsUnitOfWork, practice: str, room: str, at: Instant) -> Display:
    records = uow.records
    session = records.session_in_room(practice, room)
    open_exit = None
    last_ended = None
    if session is not None:
        open_exit = records.open_exit_of_therapist(practice, session.therapist)
    else:
        last_ended = records.last_ended_in_room(practice, room, at - CONCERN_WINDOW_US)
    return room_display(
        room,
        session,
        open_exit,
        uow.accounts.help_text(practice),
        last_ended,
        at=at,
        concern_window_us=CONCERN_WINDOW_US,
    )
