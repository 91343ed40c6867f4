"""`POST /api/v1/presence`: a video platform reports a participant leaving or rejoining a
telehealth session's call. The report goes to the practice's presence service
(`stepout.services.presence`), which detects exits nobody declared as it does from badges: the
therapist out of the call for longer than the away timeout is an exit (source `sensor`), and
rejoining ends it. A client's comings and goings are accepted and not used.

Who may call it: an API token of an `integration` account (operation `presence.report`), a
role that can do nothing else: it reads no session and runs no workflow. Staff tokens are
refused (403), so that a platform's credential never carries a person's powers.

The app holds one presence service per practice, made on first use (`presence_services`), and
a thread that ticks them twice a second; the MQTT consumer, when it runs in the same process,
uses the same services (`PresenceServices.add`, `of`). The state is the process's: with
several workers, a platform's reports for one session must reach one worker
(docs/operations.md).
"""

from collections.abc import Callable
from functools import partial
from typing import Any, Final, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import Field, field_validator
from starlette.concurrency import run_in_threadpool

from stepout.domain.instants import MICROS_PER_SECOND, InstantError, format_instant, parse_instant
from stepout.domain.presence import CallPresence, SensorsConfig
from stepout.domain.records import Session
from stepout.services.presence import PresenceService, PresenceServices
from stepout.web import audit
from stepout.web.api.schemas import Body
from stepout.web.live import Notifier, room_topic, therapist_topic
from stepout.web.security import ApiUser, State, require
from stepout.web.state import AppState

router = APIRouter(tags=["presence"])

FUTURE_SLACK: Final = 60 * MICROS_PER_SECOND  # a platform's clock may run this far ahead


class PresenceReport(Body):
    session: str = Field(min_length=1, max_length=128, description="The session's id")
    participant: Literal["therapist", "client"]
    event: Literal["left", "joined"]
    at: str = Field(
        min_length=1, max_length=64, description="When, ISO 8601 with an offset (UTC or local)"
    )

    @field_validator("at")
    @classmethod
    def _instant(cls, value: str) -> str:
        try:
            parse_instant(value)
        except InstantError as e:
            raise ValueError(str(e)) from None
        return value


_EXAMPLE: Final = {
    "session": "s_01hzx3k2v8",
    "participant": "therapist",
    "event": "left",
    "at": "2026-03-02T15:10:00+00:00",
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API token, or not a valid one."},
    403: {"description": "The token is not an integration's (`presence.report`)."},
    404: {"description": "No such session in the token's practice."},
    409: {"description": "The session has ended, or is not a telehealth session."},
    422: {"description": "A field is missing or not valid (`at` in the future, say)."},
}


@router.post(
    "/presence",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_RESPONSES,
    openapi_extra={"requestBody": {"content": {"application/json": {"example": _EXAMPLE}}}},
)
async def report_presence(body: PresenceReport, user: ApiUser, state: State) -> dict[str, Any]:
    """A participant left or rejoined a telehealth session's call. The therapist out of the
    call for longer than the away timeout is an exit the sensor detected (no reason, to be
    classified by the therapist); rejoining ends it. Client events are accepted and not used.
    Answers what was understood (`used`: whether detection takes it into account)."""
    require(user, "presence.report")
    at = parse_instant(body.at)
    now = state.now()
    if at > now + FUTURE_SLACK:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "at: is in the future; check the clock."
        )
    session = await run_in_threadpool(_telehealth_session, state, body.session)
    service = services_of(state).of(user.practice)
    used = body.participant == "therapist"
    if used:
        service.observe(
            CallPresence(user.practice, session.id, present=body.event == "joined", at=min(at, now))
        )
    else:
        service.ignore()
    await run_in_threadpool(audit.record, state, "presence.report", session.id)
    return {
        "session": session.id,
        "participant": body.participant,
        "event": body.event,
        "at": format_instant(min(at, now)),
        "used": used,
    }


def _telehealth_session(state: AppState, session_id: str) -> Session:
    with state.db.uow(read_only=True) as uow:
        s = uow.records.session(session_id)
    if s is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such session in this practice.")
    if not s.in_progress:
        raise HTTPException(status.HTTP_409_CONFLICT, "This session is not in progress.")
    if s.modality != "telehealth":
        raise HTTPException(status.HTTP_409_CONFLICT, "This session is not a telehealth one.")
    return s


# -- The app's presence services.


def services_of(state: AppState) -> PresenceServices:
    if state.presence is None:
        raise RuntimeError("the app was made without its presence services")
    return state.presence


def notify_on_change(notifier: Notifier) -> Callable[[Session], None]:
    """What a presence service calls after an exit begins or ends: the session's room display
    and its therapist's screens reread (as after a tap)."""

    def changed(s: Session) -> None:
        notifier.notify((room_topic(s.practice, s.room), therapist_topic(s.practice, s.therapist)))

    return changed


def presence_services(
    state: AppState, config_of: Callable[[str], SensorsConfig] | None = None
) -> PresenceServices:
    """The app's presence services: each practice's made on first use with `config_of`
    (default: the settings' away timeout), writing through the app's database and telling
    the app's notifier."""
    away = round(state.settings.presence_away_seconds * MICROS_PER_SECOND)
    configure = config_of or (lambda practice: SensorsConfig(practice, away_timeout=away))
    changed = notify_on_change(state.notifier)

    def make(practice: str) -> PresenceService:
        return PresenceService(
            configure(practice),
            partial(state.db.uow, scope=practice),
            read_uow=partial(state.db.uow, read_only=True, scope=practice),
            clock=state.clock,
            on_change=changed,
        )

    return PresenceServices(make, clock=state.clock)
