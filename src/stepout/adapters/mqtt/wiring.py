"""The consumer wired to the detection service (`stepout.services.presence.PresenceService`)
and to live updates: for `stepout sensors run` (a process of its own) and for
`stepout serve --sensors` (inside the web server, with the app's notifier, so that room
displays are told at once even on SQLite)."""

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stepout.adapters.db import tenancy
from stepout.adapters.mqtt.consumer import DEFAULT_BROKER, Consumer, parse_broker
from stepout.adapters.mqtt.sensors_file import load_sensors_file
from stepout.domain.instants import now
from stepout.domain.presence import SensorsConfig
from stepout.domain.records import Session
from stepout.services.presence import PresenceService, PresenceServices
from stepout.services.workflow import Clock
from stepout.web.live import (
    Hub,
    LocalNotifier,
    Notifier,
    PostgresNotifier,
    room_topic,
    therapist_topic,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from stepout.adapters.db import Database

# What `stepout serve --sensors FILE --broker URL` passes to the app factory (uvicorn builds
# the app from an import string, so arguments travel in the environment).
FILE_ENV: Final = "STEPOUT_SENSORS_FILE"
BROKER_ENV: Final = "STEPOUT_SENSORS_BROKER"
APP: Final = f"{__name__}:app_with_sensors"


def notice(notifier: Notifier) -> Callable[[Session], None]:
    """Tell a session's room display and its therapist's screens that it changed."""

    def changed(s: Session) -> None:
        notifier.notify((room_topic(s.practice, s.room), therapist_topic(s.practice, s.therapist)))

    return changed


def standalone_notifier(db: "Database") -> Notifier:
    """Live updates for a process with no web app: NOTIFY on PostgreSQL (every `stepout
    serve` hears it), nothing anyone hears on SQLite."""
    if db.dialect == "postgresql":
        dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresNotifier(Hub(), dsn)
    return LocalNotifier(Hub())


def presence_sink(
    db: "Database", config: SensorsConfig, notifier: Notifier, *, clock: Clock = now
) -> PresenceService:
    """The detection service of the sensors file's practice, its units of work in that
    practice's scope (whichever thread ticks it)."""
    practice = config.practice
    return PresenceService(
        config,
        partial(db.uow, scope=practice),
        read_uow=partial(db.uow, read_only=True, scope=practice),
        clock=clock,
        on_change=notice(notifier),
    )


def app_with_sensors() -> "FastAPI":
    """The web app (`stepout.web.app.app_from_env`) with the sensors consumer running in its
    process for the sensors file named by STEPOUT_SENSORS_FILE: started with the app, stopped
    with it. Its exits wake the app's room displays directly."""
    from stepout.web.app import app_from_env

    sensors = load_sensors_file(Path(os.environ[FILE_ENV]))
    broker = parse_broker(os.environ.get(BROKER_ENV, DEFAULT_BROKER))
    app = app_from_env()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: "FastAPI") -> AsyncIterator[Any]:
        async with inner(app) as state:
            shared = app.state.stepout  # the app's AppState
            service = presence_sink(shared.db, sensors.config, shared.notifier, clock=shared.clock)
            services = getattr(app.state, "presence", None)  # the presence API's (web/app.py)
            if isinstance(services, PresenceServices):
                services.add(service)  # the API and the sensors share one detector
            consumer = Consumer(sensors.config, service, broker, topics=sensors.topics)
            with tenancy.scope(sensors.config.practice):
                consumer.start()
            try:
                yield state
            finally:
                consumer.stop()

    app.router.lifespan_context = lifespan
    return app
