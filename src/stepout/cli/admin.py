"""`stepout init`, `verify`, `checkpoint`, `backup`, `rebuild` and `demo`: the database, its
chains and backups, and the demo practice."""

import io
import os
import random
import secrets
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.text import Text

from stepout.bootstrap import effective_policy
from stepout.cli.common import (
    console,
    database,
    ensure_key_file,
    err_console,
    fail,
    settings,
)
from stepout.cli.summary import print_summary
from stepout.domain.instants import now
from stepout.services.audit import audit_import, cli_caller
from stepout.services.checkpoint import (
    CHAINS,
    PROJECTIONS,
    Checkpoint,
    CheckpointError,
    check,
    parse,
    take,
)
from stepout.services.importing import ImportRejected, import_records
from stepout.services.ports import Selection
from stepout.services.reporting import summarize
from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl
from stepout.synthetic.practice import Cast, build_cast

if TYPE_CHECKING:
    from stepout.adapters.db import Database
    from stepout.services.accounts import AccountService

DEMO_PRACTICE = "demo"
DEMO_START = date(2026, 8, 3)  # a Monday; the demo's months end before late November 2026
DEMO_THERAPISTS = 12  # a group practice: 4,000 sessions are about three months of its work
DEMO_NAME: Final = "Demo practice (synthetic)"
# One account per role; the therapist is the cast's first therapist (t-001), so they see
# the demo's sessions. Prefixed: usernames are unique across practices.
DEMO_USERS: Final = (
    ("therapist", "demo-therapist", "own sessions: start, step out, sign"),
    ("supervisor", "demo-supervisor", "all sessions, findings, concerns"),
    ("admin", "demo-admin", "all sessions, accounts, billing"),
    ("biller", "demo-biller", "sessions, findings, billing"),
)


def safe_url(url: str) -> str:
    """The database URL without a password, fit for a terminal."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        rest = f"{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else rest
    return f"{scheme}{sep}{rest}"


def init() -> None:
    """Create the database or bring it to the current schema (Alembic, idempotent), and the
    key file if there is none."""
    ensure_key_file()
    with database(migrate=False) as db:
        revision = db.migrate()
    console.print(f"Database {safe_url(settings().database_url)} is at revision {revision}.")


def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint file (stepout checkpoint): also check that both chains still "
            "hold it.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Check the ledger's and the audit trail's hash chains from the first entry to the last,
    and with --checkpoint that nothing was cut or rewritten since it was taken."""
    taken = None if checkpoint is None else _read_checkpoint(checkpoint)
    with database() as db:
        report = check(db, db.keys, taken)
    for name, label in CHAINS.items():
        result = report.results[name]
        held = all(p.chain != name for p in report.problems)
        if result.ok and held:
            console.print(f"{label.capitalize()} intact: {result.checked:,} entries verified.")
        elif result.ok:
            console.print(
                f"{label.capitalize()}: {result.checked:,} entries verified, but it no longer "
                "holds the checkpoint:"
            )
    if all(p.chain != PROJECTIONS for p in report.problems):
        console.print("Query tables agree with the ledger.")
    if taken is not None and report.ok:
        recorded = " and ".join(
            f"the {label}'s first {taken.marks[name].count:,} entries"
            for name, label in CHAINS.items()
        )
        console.print(
            f"Checkpoint of {taken.taken_at} ({taken.database}) holds: signed with this "
            f"installation's key; {recorded} are as it recorded them.",
            highlight=False,
        )
    for problem in report.problems:
        err_console.print(Text.assemble(("error: ", "bold red"), str(problem)), highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def _read_checkpoint(path: Path) -> Checkpoint:
    try:
        return parse(path.read_bytes())
    except OSError as e:
        fail(f"{path}: {e.strerror or e}")
    except CheckpointError as e:
        fail(f"{path}: {e}")


def checkpoint(
    out: Annotated[
        str,
        typer.Option(
            "--out", "-o", help="The file to write (it must not exist), or - for standard output."
        ),
    ],
) -> None:
    """Write a signed checkpoint of both chains (how many entries, the last one's hash), to
    keep away from the database: `stepout verify --checkpoint FILE` checks against it."""
    target = None if out == "-" else Path(out)
    if target is not None and target.exists():
        fail(f"{target} already exists: choose a new name (a date in it helps)")
    with database() as db:
        try:
            taken = take(db, db.keys, plain_url(settings().database_url), now())
        except CheckpointError as e:
            fail(str(e), 1)
    data = taken.to_json()
    if target is None:
        typer.echo(data.decode(), nl=False)
        return
    try:
        write_new_file(target, data)
    except OSError as e:
        fail(f"{target}: {e.strerror or e}")
    counts = ", ".join(
        f"{label} {taken.marks[name].count:,} entries" for name, label in CHAINS.items()
    )
    console.print(
        f"Checkpoint written to {target}: {counts}. Keep it off this machine.", highlight=False
    )


def backup(
    out: Annotated[
        Path,
        typer.Argument(help="The backup file to write (it must not exist).", dir_okay=False),
    ],
) -> None:
    """Write a consistent copy of the database while it is in use (SQLite's online backup,
    or pg_dump's custom format). The key file is not in it: back that up apart."""
    from stepout.adapters.db.backup import BackupError
    from stepout.adapters.db.backup import backup as make_backup

    url = settings().database_url  # copied as it is: a backup neither migrates nor needs keys
    try:
        result = make_backup(url, out)
    except BackupError as e:
        fail(str(e))
    console.print(
        f"Backed up {safe_url(url)} to {result.path} ({result.size:,} bytes, "
        f"{result.seconds:.1f} s). The key file is not in it: back it up apart. Check the "
        "copy after restoring it with stepout verify.",
        highlight=False,
    )


def plain_url(url: str) -> str:
    """The database URL without its password (for a checkpoint: no secret in it)."""
    from sqlalchemy.engine import make_url

    # `URL.set(password=None)` would keep the password: None means "unchanged" there.
    return make_url(url)._replace(password=None).render_as_string(hide_password=False)


def write_new_file(path: Path, data: bytes) -> None:
    """Write `data` to a new file durably: refuse an existing one, fsync it."""
    with path.open("xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def rebuild() -> None:
    """Rebuild the sessions, exits and concerns tables from the ledger."""
    with database() as db:
        replayed = db.rebuild_projections()
    console.print(f"Projections rebuilt from {replayed:,} ledger entries.")


def demo(
    sessions: Annotated[int, typer.Option("--sessions", "-n", min=100)] = 4000,
    seed: Annotated[int, typer.Option("--seed")] = 2026,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the web app afterwards.")
    ] = True,
    host: Annotated[str, typer.Option("--host", help="Where the web app listens.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
) -> None:
    """Build a demo practice with synthetic records and a login for each role, show how it is
    doing, and start the web app (a second run reuses the practice, with new passwords)."""
    from stepout.cli.serve import base_url, check_ready, run_server

    config = GeneratorConfig(
        sessions=sessions,
        seed=seed,
        practice=DEMO_PRACTICE,
        start=DEMO_START,
        therapists=DEMO_THERAPISTS,
    )
    cast = build_cast(DEMO_PRACTICE, sessions, DEMO_THERAPISTS, None, random.Random(seed))
    policy = effective_policy(settings())
    ensure_key_file()
    with database() as db:
        with db.uow(read_only=True) as uow:
            there = uow.records.practice(DEMO_PRACTICE) is not None
            result = summarize(uow.records, Selection(practice=DEMO_PRACTICE), policy, now())
        if there and result.sessions:
            added = "0 records added, the demo practice was already there: reusing it"
        else:
            new, unchanged = _build_demo(db, config, create_practice=not there)
            added = f"{new:,} records added, {unchanged:,} already there"
            with db.uow(read_only=True) as uow:
                result = summarize(uow.records, Selection(practice=DEMO_PRACTICE), policy, now())
        password = _demo_password()
        room, token = _demo_accounts(db, cast, password)
    console.rule("[bold]Stepout demo practice")
    console.print(f"Database: {safe_url(settings().database_url)} ({added}).")
    print_summary(result, policy)
    _print_logins(_demo_url(host, port), password, room, token)
    if not serve:
        console.print(
            "Start the web app with [bold]stepout serve[/] (the logins above stay valid "
            "until the next [bold]stepout demo[/])."
        )
        return
    check_ready(1)
    console.print(
        f"Starting the web app on {base_url(host, port)} (Ctrl+C stops it)…", highlight=False
    )
    run_server(host, port)


def _build_demo(
    db: "Database", config: GeneratorConfig, *, create_practice: bool
) -> tuple[int, int]:
    """Generate and import the demo's records: (records added, records already there)."""
    from stepout.services.accounts import AccountError, AccountService

    buffer = io.BytesIO()
    with err_console.status("Generating the demo practice…"):
        write_jsonl(generate(config), buffer)
    buffer.seek(0)
    if create_practice:  # named, in the records' time zone (an import would say UTC)
        try:
            AccountService(db.uow).add_practice(DEMO_PRACTICE, DEMO_NAME, config.timezone)
        except AccountError as e:
            fail(f"the demo practice: {e}")
    try:
        with err_console.status("Importing…"), db.uow() as uow:
            told = audit_import(uow, cli_caller())
            report = import_records(uow, buffer, actor="demo", progress=told)
    except ImportRejected as rejected:
        fail(
            "the database already holds other records under the demo's ids "
            f"({rejected.errors[0]}); use a fresh STEPOUT_DATABASE_URL",
        )
    return sum(report.created.values()), report.unchanged


def _demo_password() -> str:
    """This run's password for the demo accounts: short enough to type, random per run."""
    from stepout.services.credentials import WeakPassword, check_password_strength

    while True:
        password = f"demo-{secrets.token_hex(5)}"
        try:
            check_password_strength(password)
        except WeakPassword:  # pragma: no cover - rare: "demo-" and ten digits is "demo" padded
            continue
        return password


def _demo_accounts(db: "Database", cast: Cast, password: str) -> tuple[str, str]:
    """The demo's accounts (this run's password), its rooms, and a display token for the demo
    therapist's room: (room, token). Idempotent: what is there is reused."""
    from stepout.services.accounts import AccountError, AccountService

    accounts = AccountService(db.uow)
    therapist = cast.therapists[0]
    try:
        for role, username, _ in DEMO_USERS:
            _demo_user(accounts, role, username, password, therapist.id)
        # The demo practice alone signs in without a second factor; its pages say so.
        accounts.signin.waive_mfa(DEMO_PRACTICE)
        rooms = {r.id for r in accounts.rooms(DEMO_PRACTICE)}
        for room in cast.rooms:
            if room not in rooms:
                accounts.add_room(room, DEMO_PRACTICE, f"Room {room.removeprefix('room-')}")
        found, token = accounts.create_room_token(therapist.room, DEMO_PRACTICE)
    except AccountError as e:
        fail(f"the demo accounts: {e}; use a fresh STEPOUT_DATABASE_URL")
    return found.id, token


def _demo_user(
    accounts: "AccountService", role: str, username: str, password: str, therapist_id: str
) -> None:
    user_id = therapist_id if role == "therapist" else None
    found = accounts.user(username)
    if found is None:
        accounts.add_user(username, DEMO_PRACTICE, role, password, user_id=user_id)
        return
    if found.practice != DEMO_PRACTICE or found.role != role or found.id != (user_id or username):
        fail(
            f"the user {username} already exists and is not the demo's {role} "
            "(another practice, role or id); use a fresh STEPOUT_DATABASE_URL"
        )
    if found.disabled:
        accounts.set_disabled(username, False)
    accounts.set_password(username, password)


def _demo_url(host: str, port: int) -> str:
    """Where the demo's links point: STEPOUT_PUBLIC_URL when set, else where it listens."""
    from stepout.cli.serve import base_url

    current = settings()
    if "public_url" in current.model_fields_set:
        return current.public_url.rstrip("/")
    return base_url(host, port)


def _print_logins(url: str, password: str, room: str, token: str) -> None:
    from rich.table import Table

    from stepout.web.links import display_path

    console.rule("[bold]Demo logins (synthetic practice: no real person in it)")
    console.print(
        f"Open [bold]{url}[/] and sign in with one of these usernames and this run's "
        f"password, [bold]{password}[/] (a new one on every `stepout demo`):",
        highlight=False,
        soft_wrap=True,
    )
    table = Table(show_header=True, box=None, padding=(0, 2))
    for column in ("role", "username", "sees"):
        table.add_column(column)
    for role, username, sees in DEMO_USERS:
        table.add_row(role, username, sees)
    console.print(table)
    console.print(
        "Multi-factor sign-in (MFA) is waived for this demo practice only: its accounts sign "
        "in with the password alone. Every other practice's staff set up a code app at their "
        "first sign-in.",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"The room display of {room} (the demo therapist's room; open it in a second window):",
        highlight=False,
    )
    typer.echo(f"  {url}{display_path(room, token)}")
    console.print(f"API docs: {url}/api/docs", highlight=False, soft_wrap=True)
