"""`stepout sensors run` and `stepout sensors simulate`: presence sensors over MQTT.

`run` feeds the detection service from a broker (docs/sensors.md); `simulate` publishes the
traffic of a demo practice's badges, doors and occupancy sensors to a broker, so that a
newcomer can watch detection work."""

import random
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Final

import typer

from stepout.cli.common import console, database, err_console, fail, settings

if TYPE_CHECKING:
    from stepout.adapters.mqtt.consumer import Broker
    from stepout.adapters.mqtt.parsing import Topics
    from stepout.adapters.mqtt.sensors_file import SensorsFile
    from stepout.adapters.mqtt.simulator import Layout

sensors_app = typer.Typer(
    help="Presence sensors over MQTT: detect exits nobody declared (docs/sensors.md).",
    no_args_is_help=True,
)

BROKER_HELP: Final = "The MQTT broker, mqtt://host[:port]."
DEMO_BILLED: Final[tuple[str, ...]] = ()  # a few minutes long: no code to judge


def broker_of(url: str) -> "Broker":
    from stepout.adapters.mqtt.consumer import BrokerError, parse_broker

    try:
        return parse_broker(url)
    except BrokerError as e:
        fail(f"--broker: {e}")


def read_sensors_file(path: Path) -> "SensorsFile":
    from stepout.adapters.mqtt.sensors_file import SensorsFileError, load_sensors_file

    try:
        return load_sensors_file(path)
    except SensorsFileError as e:
        fail(str(e))


@sensors_app.command("run")
def run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The sensors file (TOML).", dir_okay=False)
    ],
    broker: Annotated[str, typer.Option("--broker", help=BROKER_HELP)] = "mqtt://127.0.0.1:1883",
) -> None:
    """Subscribe to the broker and record the exits the sensors detect, until Ctrl+C or
    SIGTERM. Counters are logged as JSON lines on standard error."""
    from stepout import logs
    from stepout.adapters.mqtt.consumer import Consumer
    from stepout.adapters.mqtt.wiring import presence_sink, standalone_notifier

    sensors = read_sensors_file(config)
    where = broker_of(broker)
    logs.configure()
    with database() as db:
        with db.uow(read_only=True) as uow:
            if uow.records.practice(sensors.config.practice) is None:
                fail(f"{config}: practice: no practice {sensors.config.practice!r} here")
        notifier = standalone_notifier(db)
        if db.dialect == "sqlite":
            err_console.print(
                "SQLite: a running `stepout serve` does not hear of the exits recorded here "
                "until its displays' next change; run `stepout serve --sensors FILE` instead "
                "to update room displays at once.",
                soft_wrap=True,
            )
        sink = presence_sink(db, sensors.config, notifier)
        consumer = Consumer(sensors.config, sink, where, topics=sensors.topics)
        console.print(
            f"Listening to {where} for practice {sensors.config.practice} "
            f"({len(sensors.config.devices)} badges, {len(sensors.config.sensors)} sensors). "
            "Ctrl+C stops.",
            highlight=False,
            soft_wrap=True,
        )
        try:
            consumer.run_until_signalled()
        finally:
            notifier.stop()


@sensors_app.command("simulate")
def simulate(
    broker: Annotated[str, typer.Option("--broker", help=BROKER_HELP)] = "mqtt://127.0.0.1:1883",
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="A sensors file to simulate (the i-th device in the i-th receiver's room); "
            "default: the demo practice of `stepout demo`.",
            dir_okay=False,
        ),
    ] = None,
    rooms: Annotated[
        int | None,
        typer.Option("--rooms", min=1, help="Rooms (one therapist each) of the demo layout."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.01,
            help="Badge reports per second in all (default: one per badge every 2 s).",
        ),
    ] = None,
    seconds: Annotated[
        float | None, typer.Option("--seconds", min=0.1, help="Stop after this long.")
    ] = None,
    walkout_every: Annotated[
        float,
        typer.Option("--walkout-every", min=0, help="Mean seconds between undeclared exits."),
    ] = 90.0,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    write_config: Annotated[
        Path | None,
        typer.Option(
            "--write-config",
            help="Write the sensors file of the simulated devices here and stop.",
            dir_okay=False,
        ),
    ] = None,
    start_sessions: Annotated[
        bool,
        typer.Option(
            "--start-sessions",
            help="Demo aid: start a session (through the workflow) for each simulated "
            "therapist of the practice who has none in their room, and end those on exit.",
        ),
    ] = False,
) -> None:
    """Publish realistic device traffic for a demo practice: badges seen in their rooms,
    doors, occupancy, and now and then a therapist who walks out without declaring it."""
    from stepout.adapters.mqtt.sensors_file import render_sensors_file
    from stepout.adapters.mqtt.simulator import Publisher, Simulation
    from stepout.adapters.mqtt.simulator import run as publish

    if config is not None and rooms is not None:
        fail("--config and --rooms: give one or the other")
    layout, topics = _layout(config, rooms)
    if write_config is not None:
        if write_config.exists():
            fail(f"{write_config} already exists: choose a new name")
        write_config.write_text(render_sensors_file(layout.sensors_config(), topics))
        console.print(
            f"Wrote {write_config}: {len(layout.placements)} badges and rooms of practice "
            f"{layout.practice}. Run the detection with "
            f"[bold]stepout serve --sensors {write_config}[/].",
            highlight=False,
            soft_wrap=True,
        )
        return
    where = broker_of(broker)
    n = len(layout.placements)
    badge_every = 2.0 if rate is None else n / rate

    def narrate(at: float, line: str) -> None:
        stamp = datetime.now(UTC).astimezone().strftime("%H:%M:%S")
        console.print(f"{stamp}  {line}", highlight=False)

    simulation = Simulation(
        layout,
        topics,
        seed=seed,
        badge_every_s=badge_every,
        walkout_every_s=walkout_every,
        narrate=narrate,
    )
    started = _start_sessions(layout) if start_sessions else []
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Publisher(where) as publisher:
            console.print(
                f"Publishing to {where}: {n} badges, a report every {badge_every:.1f} s each, "
                f"doors and occupancy; an undeclared exit about every {walkout_every:.0f} s. "
                "Ctrl+C stops.",
                highlight=False,
                soft_wrap=True,
            )
            began = time.monotonic()
            sent = publish(simulation, publisher, seconds=seconds, stop=stop)
            took = time.monotonic() - began
    except ConnectionError as e:
        fail(str(e))
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if started:
            _end_sessions(layout.practice, started)
    console.print(f"Published {sent:,} messages in {took:.0f} s.", highlight=False)


def _layout(config: Path | None, rooms: int | None) -> "tuple[Layout, Topics]":
    from stepout.adapters.mqtt.parsing import Topics
    from stepout.adapters.mqtt.simulator import layout, layout_from_config
    from stepout.cli.admin import DEMO_PRACTICE, DEMO_THERAPISTS

    if config is not None:
        read = read_sensors_file(config)
        try:
            return layout_from_config(read.config), read.topics
        except ValueError as e:
            fail(f"{config}: {e}")
    count = DEMO_THERAPISTS if rooms is None else rooms
    return layout(
        DEMO_PRACTICE, [(f"t-{i + 1:03d}", f"room-{i + 1:02d}") for i in range(count)]
    ), Topics()


def _demo_clients(practice: str) -> dict[str, str]:
    """The first client of each demo therapist's caseload (the cast `stepout demo` builds)."""
    from stepout.cli.admin import DEMO_PRACTICE, DEMO_THERAPISTS
    from stepout.synthetic.practice import build_cast

    if practice != DEMO_PRACTICE:
        return {}
    cast = build_cast(DEMO_PRACTICE, 4000, DEMO_THERAPISTS, None, random.Random(2026))
    return {t.id: t.clients[0] for t in cast.therapists}


def _start_sessions(layout: "Layout") -> list[str]:
    """Start a session for each placed therapist with none in their room: the ids started."""
    from stepout.domain.commands import StartSession
    from stepout.services.audit import cli_caller
    from stepout.services.workflow import Workflow

    clients = _demo_clients(layout.practice)
    started: list[str] = []
    with database() as db:
        with db.uow(read_only=True) as uow:
            if uow.records.practice(layout.practice) is None:
                fail(
                    f"--start-sessions: no practice {layout.practice!r} in "
                    f"{settings().database_url.split('://')[0]}; run `stepout demo` first"
                )
        workflow = Workflow(db.uow)
        caller = cli_caller(layout.practice)
        for p in layout.placements:
            with db.uow(read_only=True) as uow:
                busy = uow.records.session_in_room(layout.practice, p.room)
            if busy is not None or p.therapist not in clients:
                continue
            outcome = workflow.run(
                StartSession(
                    practice=layout.practice,
                    therapist=p.therapist,
                    client=clients[p.therapist],
                    room=p.room,
                    modality="in_person",
                    billed_codes=DEMO_BILLED,
                ),
                caller=caller,
            )
            started.append(outcome.record.id)
    console.print(
        f"Started {len(started)} demo sessions (demo aid: they end when the simulator stops).",
        highlight=False,
    )
    return started


def _end_sessions(practice: str, sessions: list[str]) -> None:
    from stepout.domain.commands import EndSession
    from stepout.domain.protocol import ProtocolError
    from stepout.services.audit import cli_caller
    from stepout.services.workflow import Workflow

    ended = 0
    with database() as db:
        workflow = Workflow(db.uow)
        for session in sessions:
            try:
                workflow.run(
                    EndSession(practice=practice, session=session), caller=cli_caller(practice)
                )
                ended += 1
            except ProtocolError:
                pass  # ended meanwhile, from the console
    console.print(f"Ended {ended} demo sessions.", highlight=False)
