"""`stepout serve`: the web app (pages and REST API) under uvicorn.

Logs are JSON lines on standard error (`stepout.logs`): uvicorn's own messages, and one line
per request from Stepout's request log, which names the route's template, never the URL (room
displays carry their token in `?token=`). SQLite is served by one process; PostgreSQL by as
many workers as asked (live updates cross processes through LISTEN/NOTIFY)."""

from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.markup import escape

from stepout.cli.common import console, database, fail, settings

APP: Final = "stepout.web.app:app_from_env"
GRACEFUL_SHUTDOWN_S: Final = 5  # open live streams (SSE) are closed after this on SIGTERM


def log_config(access_log: bool = True) -> dict[str, Any]:
    """The logging set-up every worker process applies: JSON lines (`stepout.logs`), with
    uvicorn's access log replaced by Stepout's request log (off with `access_log=False`)."""
    from stepout.logs import uvicorn_config

    return uvicorn_config(access_log=access_log)


def base_url(host: str, port: int) -> str:
    """The address a browser on this machine uses for `host:port`."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_ready(workers: int) -> str:
    """Refuse what cannot work before any worker starts: several processes on SQLite, a
    PostgreSQL schema that is not current, a missing key file. Returns a description of the
    database for the start-up line."""
    from stepout.cli.admin import safe_url

    current = settings()
    # The key file is read here; SQLite is created or migrated; PostgreSQL must be current.
    with database() as db:
        dialect = db.dialect
    if dialect == "sqlite" and workers > 1:
        fail(
            f"--workers {workers}: an SQLite database is served by one process; "
            "use PostgreSQL (STEPOUT_DATABASE_URL=postgresql+psycopg://...) for several workers"
        )
    return safe_url(current.database_url)


def run_server(
    host: str,
    port: int,
    *,
    workers: int = 1,
    forwarded_allow_ips: str | None = None,
    access_log: bool = True,
    app: str = APP,
) -> None:
    """Run uvicorn until SIGINT or SIGTERM (one app per worker, built from the environment)."""
    import uvicorn

    uvicorn.run(
        app,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,  # None: uvicorn's default, loopback only
        log_config=log_config(access_log),
        access_log=False,  # Stepout's request log instead (see log_config)
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless told).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes (more than one: PostgreSQL only).")
    ] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Proxies whose X-Forwarded-For/-Proto headers are trusted, comma-separated "
            "(default: loopback, i.e. a reverse proxy on this machine).",
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log each request.")
    ] = True,
    sensors: Annotated[
        Path | None,
        typer.Option(
            "--sensors",
            help="A sensors file (docs/sensors.md): also run the MQTT sensors consumer in the "
            "server, so that detected exits reach the room displays at once.",
            dir_okay=False,
        ),
    ] = None,
    broker: Annotated[
        str, typer.Option("--broker", help="With --sensors: the MQTT broker, mqtt://host[:port].")
    ] = "mqtt://127.0.0.1:1883",
) -> None:
    """Run the web app: the therapist's console, the room displays and the REST API."""
    app = APP if sensors is None else _with_sensors(sensors, broker, workers)
    where = check_ready(workers)
    url = base_url(host, port)
    plural = "" if workers == 1 else "s"
    everywhere = " (listening on all addresses)" if host in ("0.0.0.0", "::", "") else ""
    console.print(
        f"Stepout is serving on [bold]{url}[/]{everywhere} ({workers} worker{plural}; "
        f"database {escape(where)}). Ctrl+C stops it.",
        soft_wrap=True,
        highlight=False,
    )
    if not _loopback(host):
        console.print(
            "Not a loopback address: put it behind a TLS reverse proxy (docs/operations.md). "
            "Browsers keep the sign-in cookie (Secure) over HTTPS only.",
            soft_wrap=True,
        )
    public = settings().public_url.rstrip("/")
    if public != url:
        console.print(f"Links printed by the CLI use STEPOUT_PUBLIC_URL={public}.", soft_wrap=True)
    run_server(
        host,
        port,
        workers=workers,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=access_log,
        app=app,
    )


def _with_sensors(path: Path, broker: str, workers: int) -> str:
    """Check the sensors file and the broker, hand them to the app factory (through the
    environment: uvicorn builds the app from an import string), and name that factory."""
    import os

    from stepout.cli.sensors import broker_of, read_sensors_file

    if workers > 1:
        fail(
            "--sensors runs the consumer in one server process: with several workers, run "
            "`stepout sensors run` beside them (PostgreSQL tells every worker)"
        )
    read_sensors_file(path)
    broker_of(broker)
    from stepout.adapters.mqtt.wiring import APP as SENSORS_APP
    from stepout.adapters.mqtt.wiring import BROKER_ENV, FILE_ENV

    os.environ[FILE_ENV] = str(path.resolve())
    os.environ[BROKER_ENV] = broker
    return SENSORS_APP
