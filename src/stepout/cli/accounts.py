"""`stepout practices`, `users`, `rooms` and `tokens`: who may use Stepout, and the links and
tokens they use it with.

Passwords come from standard input (never an argument: arguments show in `ps` and shell
history) and are never printed. Tokens are printed once, alone on standard output (so that
`TOKEN=$(stepout tokens create alice)` works); what they are goes to standard error. The
database and the account service are imported inside the commands: `stepout --version` stays
fast."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stepout.cli.common import console, database, err_console, fail, settings

if TYPE_CHECKING:
    from stepout.services.accounts import AccountService

practices_app = typer.Typer(
    help="Practices, and what their room displays tell a client left alone.",
    no_args_is_help=True,
)
users_app = typer.Typer(
    help="Staff accounts: admin, supervisor, therapist, biller.", no_args_is_help=True
)
rooms_app = typer.Typer(help="Rooms and their display links.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (Authorization: Bearer).", no_args_is_help=True)

Practice = Annotated[str, typer.Option("--practice", "-p", help="The practice's id.")]
CallButton = Annotated[
    str | None, typer.Option("--call-button", help="What the display says about a call button.")
]
Reception = Annotated[
    str | None, typer.Option("--reception", help="How to reach reception, as the display says.")
]
Emergency = Annotated[
    str | None, typer.Option("--emergency", help="What to do in an emergency (the number).")
]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (one line; asked twice at a terminal).",
    ),
]


@contextmanager
def _accounts() -> Iterator["AccountService"]:
    """The account service on the configured database; a refused command fails cleanly."""
    from stepout.services.accounts import AccountError, AccountService

    with database() as db:
        try:
            yield AccountService(db.uow, keys=db.keys)
        except AccountError as e:
            fail(str(e))


def _read_password() -> str:
    """One line from standard input, without its line ending (and without echo at a
    terminal)."""
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
        if password and getpass.getpass("Again: ") != password:
            fail("the two passwords differ; nothing was changed")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        fail("--password-stdin: no password on standard input (one line is read)")
    return password


def _say(message: str) -> None:
    """A line about what was done, on standard error (standard output carries tokens)."""
    err_console.print(message, highlight=False, soft_wrap=True)


# Practices


@practices_app.command("add")
def practice_add(
    practice_id: Annotated[str, typer.Argument(metavar="ID", help="Its id (in records).")],
    name: Annotated[str, typer.Option("--name", help="The practice's name.")],
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA time zone, like America/Chicago.")
    ] = "UTC",
    call_button: CallButton = None,
    reception: Reception = None,
    emergency: Emergency = None,
) -> None:
    """Add a practice, with the help text its room displays show (defaults unless given)."""
    from stepout.domain.accounts import HelpText

    defaults = HelpText()
    help_text = HelpText(
        call_button if call_button is not None else defaults.call_button,
        reception if reception is not None else defaults.reception,
        emergency if emergency is not None else defaults.emergency,
    )
    with _accounts() as accounts:
        accounts.add_practice(practice_id, name, timezone, help_text)
    console.print(f"Added practice {escape(practice_id)} ({escape(name)}, {timezone}).")


@practices_app.command("help")
def practice_help(
    practice_id: Annotated[str, typer.Argument(metavar="ID")],
    call_button: CallButton = None,
    reception: Reception = None,
    emergency: Emergency = None,
) -> None:
    """Show the help text on the practice's room displays; with options, change it."""
    from stepout.domain.accounts import HelpText

    with _accounts() as accounts:
        current = accounts.help_text(practice_id)
        changed = any(v is not None for v in (call_button, reception, emergency))
        if changed:
            current = HelpText(
                call_button if call_button is not None else current.call_button,
                reception if reception is not None else current.reception,
                emergency if emergency is not None else current.emergency,
            )
            accounts.set_help_text(practice_id, current)
    table = Table(title=f"Room display help, practice {escape(practice_id)}", show_header=False)
    table.add_row("call button", escape(current.call_button))
    table.add_row("reception", escape(current.reception))
    table.add_row("emergency", escape(current.emergency))
    console.print(table)
    if changed:
        console.print("Saved; open displays show it on their next update.")


# Users


@users_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="One word; what they sign in with.")],
    practice: Practice,
    role: Annotated[
        str,
        typer.Option(
            "--role", help="admin, supervisor, therapist, biller or integration (a video platform)."
        ),
    ],
    password_stdin: PasswordStdin = False,
    user_id: Annotated[
        str | None,
        typer.Option("--id", help="A therapist's id in the records (default: the username)."),
    ] = None,
) -> None:
    """Add a staff account. Without --password-stdin it cannot sign in (API tokens only)."""
    password = _read_password() if password_stdin else None
    with _accounts() as accounts:
        user = accounts.add_user(username, practice, role, password, user_id=user_id)
    ident = f", therapist id {user.id}" if role == "therapist" else ""
    console.print(
        f"Added {role} {escape(username)} to practice {escape(practice)}{escape(ident)}.",
        highlight=False,
    )
    if password is None:
        console.print(
            "It has no password: it can use API tokens only "
            f"(`stepout users password {escape(username)} --password-stdin` sets one).",
            highlight=False,
        )


@users_app.command("list")
def user_list(practice: Practice) -> None:
    """The practice's accounts."""
    with _accounts() as accounts:
        users = accounts.users(practice)
    table = Table(title=f"Users of practice {escape(practice)}", title_justify="left")
    for column in ("username", "role", "id", "status"):
        table.add_column(column)
    for u in users:
        status = "disabled" if u.disabled else "active"
        table.add_row(escape(u.username), u.role, escape(u.id), status)
    console.print(table if users else f"Practice {escape(practice)} has no users yet.")


@users_app.command("password")
def user_password(
    username: Annotated[str, typer.Argument()],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read it from standard input (one line).")
    ] = False,
) -> None:
    """Set a new password (read from standard input); the account's browser sessions end."""
    if not password_stdin:
        fail("pass the new password on standard input with --password-stdin")
    password = _read_password()
    with _accounts() as accounts:
        accounts.set_password(username, password)
    console.print(f"Password of {escape(username)} changed; its browser sessions have ended.")


@users_app.command("disable")
def user_disable(username: Annotated[str, typer.Argument()]) -> None:
    """Stop an account: no sign-in, its browser sessions and API tokens stop working."""
    with _accounts() as accounts:
        accounts.set_disabled(username, True)
    console.print(f"Disabled {escape(username)}.")


@users_app.command("enable")
def user_enable(username: Annotated[str, typer.Argument()]) -> None:
    """Let a disabled account sign in again (its API tokens work again too)."""
    with _accounts() as accounts:
        accounts.set_disabled(username, False)
    console.print(f"Enabled {escape(username)}.")


@users_app.command("mfa-reset")
def user_mfa_reset(username: Annotated[str, typer.Argument()]) -> None:
    """Drop the account's second factor and recovery codes (a lost phone); its browser
    sessions end, and it sets up a new factor at its next sign-in."""
    with _accounts() as accounts:
        had = accounts.reset_mfa(username)
    what = "dropped its second factor and recovery codes" if had else "it had no second factor"
    console.print(
        f"MFA of {escape(username)} reset: {what}; its browser sessions have ended. "
        "It sets up a new factor at its next sign-in.",
        highlight=False,
    )


# Rooms


@rooms_app.command("add")
def room_add(
    room: Annotated[str, typer.Argument(metavar="ROOM", help="The room id sessions carry.")],
    practice: Practice,
    name: Annotated[str, typer.Option("--name", help="What staff call it.")],
) -> None:
    """Add a room to a practice."""
    with _accounts() as accounts:
        accounts.add_room(room, practice, name)
    console.print(
        f"Added room {escape(room)} ({escape(name)}) to practice {escape(practice)}; "
        f"`stepout rooms token {escape(room)}` prints its display link.",
        highlight=False,
    )


@rooms_app.command("token")
def room_token(
    room: Annotated[str, typer.Argument(metavar="ROOM")],
    practice: Annotated[
        str | None,
        typer.Option("--practice", "-p", help="Needed when several practices have the room."),
    ] = None,
) -> None:
    """Print the room display's link, with a new token that opens this room's display only."""
    from stepout.web.links import display_path

    with _accounts() as accounts:
        if practice is not None:
            accounts.help_text(practice)  # "no practice X" before "no room"
        found, token = accounts.create_room_token(room, practice)
    typer.echo(f"{settings().public_url.rstrip('/')}{display_path(found.id, token)}")
    _say(
        f"The display link of room {escape(found.id)}, practice {escape(found.practice)}: shown "
        "once, and it opens this room's display only. Earlier links keep working until "
        f"`stepout rooms revoke {escape(found.id)} --practice {escape(found.practice)}`."
    )


@rooms_app.command("list")
def room_list(
    practice: Annotated[
        str | None, typer.Option("--practice", "-p", help="Only this practice's rooms.")
    ] = None,
) -> None:
    """The rooms (of one practice, or of all)."""
    with _accounts() as accounts:
        rooms = accounts.rooms(practice)
    table = Table(title="Rooms", title_justify="left")
    for column in ("practice", "room", "name"):
        table.add_column(column)
    for r in rooms:
        table.add_row(escape(r.practice), escape(r.id), escape(r.name))
    console.print(table if rooms else "No rooms yet: `stepout rooms add ROOM --practice ID`.")


@rooms_app.command("revoke")
def room_revoke(
    room: Annotated[str, typer.Argument(metavar="ROOM")],
    practice: Annotated[
        str | None,
        typer.Option("--practice", "-p", help="Needed when several practices have the room."),
    ] = None,
) -> None:
    """Revoke every display link of the room (a lost tablet); `rooms token` makes a new one."""
    with _accounts() as accounts:
        found, revoked = accounts.revoke_room_tokens(room, practice)
    links = "link" if revoked == 1 else "links"
    console.print(
        f"Revoked {revoked} display {links} of room {escape(found.id)}, "
        f"practice {escape(found.practice)}."
    )


# API tokens


@tokens_app.command("create")
def token_create(username: Annotated[str, typer.Argument()]) -> None:
    """Print a new API token for the user (shown once; stored only as a hash)."""
    with _accounts() as accounts:
        user = accounts.user(username)
        if user is None:
            fail(f"no user {username}")
        if user.disabled:
            fail(f"{username} is disabled: `stepout users enable {username}` first")
        token_id, token = accounts.create_api_token(username)
    typer.echo(token)
    _say(
        f"API token {token_id} for {escape(username)} ({user.role}, practice "
        f"{escape(user.practice)}): shown once, store it now. Use it as "
        f"`Authorization: Bearer <token>`; revoke it with `stepout tokens revoke {token_id}`."
    )


@tokens_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID", help="Like tok_01h...")],
) -> None:
    """Revoke an API token at once (by the id printed when it was created)."""
    with _accounts() as accounts:
        accounts.revoke_api_token(token_id)
    console.print(f"Revoked API token {escape(token_id)}.")
