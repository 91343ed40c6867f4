"""`stepout serve`: the web app (pages and REST API) under uvicorn.

Room displays carry their token in `?token=`, so the access log prints paths without query
strings. SQLite is served by one process; PostgreSQL by as many workers as asked (live updates
cross processes through LISTEN/NOTIFY)."""

import copy
import logging
from typing import Annotated, Any, Final

import typer
from rich.markup import escape

from stepout.cli.common import console, database, fail, settings

APP: Final = "stepout.web.app:app_from_env"
GRACEFUL_SHUTDOWN_S: Final = 5  # open live streams (SSE) are closed after this on SIGTERM


class HideQueryStrings(logging.Filter):
    """Drop the query string from uvicorn's access log lines: a room display's URL carries its
    token (`?token=`), and a token in a log file is a leaked token."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(
                a.partition("?")[0] if isinstance(a, str) and a.startswith("/") else a for a in args
            )
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with query strings kept out of the access log (the filter
    is named by import path, so every worker process builds it too)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_query_strings"] = {
        "()": f"{__name__}.{HideQueryStrings.__name__}"
    }
    config["loggers"]["uvicorn.access"]["filters"] = ["hide_query_strings"]
    return config


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
) -> None:
    """Run uvicorn until SIGINT or SIGTERM (one app per worker, built from the environment)."""
    import uvicorn

    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,  # None: uvicorn's default, loopback only
        log_config=log_config(),
        access_log=access_log,
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
) -> None:
    """Run the web app: the therapist's console, the room displays and the REST API."""
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
        host, port, workers=workers, forwarded_allow_ips=forwarded_allow_ips, access_log=access_log
    )
