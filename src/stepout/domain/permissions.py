"""Who may do what: one matrix of operations and the roles allowed each. Every web route and
API operation names its operation here (`ROUTES`), and every command of the command line is
the operator's (`OPERATOR_COMMANDS`); a therapist is further limited to their own sessions
(checked where the session is read), and everyone to their own practice."""

from typing import Final

from stepout.domain.accounts import Role, User

ALL_STAFF: Final[frozenset[Role]] = frozenset({"admin", "supervisor", "therapist", "biller"})

OPERATIONS: Final[dict[str, frozenset[Role]]] = {
    # A therapist's own live workflow.
    "session.start": frozenset({"therapist"}),
    "session.end": frozenset({"therapist"}),
    "exit.declare": frozenset({"therapist"}),
    "exit.update": frozenset({"therapist"}),  # inform, safeguards, EMS, attendant, return
    "exit.sign": frozenset({"therapist"}),
    "record.amend": frozenset({"therapist", "supervisor"}),
    # Reading sessions: a therapist their own, the others the practice's.
    "session.read": ALL_STAFF,
    "findings.read": frozenset({"admin", "supervisor", "therapist", "biller"}),
    "concerns.read": frozenset({"admin", "supervisor"}),
    "concern.acknowledge": frozenset({"supervisor"}),
    # A finding's review (acknowledge, assign, resolve); a therapist reads the reviews of the
    # findings about their sessions and of those assigned to them, through findings.read.
    "finding.review": frozenset({"admin", "supervisor"}),
    "records.import": frozenset({"admin"}),
    "billing.read": frozenset({"admin", "supervisor", "biller"}),
    "dashboard.read": frozenset({"admin", "supervisor"}),
    "accounts.read": frozenset({"admin"}),
    # A video platform's integration reports who left or rejoined a call (least privilege: the
    # role can do nothing else, and no staff role can do this).
    "presence.report": frozenset({"integration"}),
}


# Who may reach what no role's operation covers: each route below names one of these, or the
# operation(s) above that it needs (all of them, for a tuple).
PUBLIC: Final = "public"  # anyone: sign-in, the API's documentation, static files, health
SIGNING_IN: Final = "signing-in"  # a browser past the password, owing its second factor
SIGNED_IN: Final = "signed-in"  # any staff account's browser session (signing out)
ROOM_DISPLAY: Final = "room-display"  # a room's display token, for that room only
CONCERN_LINK: Final = "concern-link"  # a client's private concern link (its keyed code)
ACCESS_KINDS: Final = frozenset({PUBLIC, SIGNING_IN, SIGNED_IN, ROOM_DISPLAY, CONCERN_LINK})

Access = str | tuple[str, ...]

# Every web route, by "METHOD /path" (a GET also answers HEAD): what it needs. A test walks
# the app's routes and fails for one missing here, or listed here and gone.
ROUTES: Final[dict[str, Access]] = {
    # The REST API (API tokens; the room display: its room token).
    "GET /api/v1/sessions": "session.read",
    "POST /api/v1/sessions": "session.start",
    "GET /api/v1/sessions/{session_id}": "session.read",
    "POST /api/v1/sessions/{session_id}/end": "session.end",
    "POST /api/v1/sessions/{session_id}/exits": "exit.declare",
    "POST /api/v1/sessions/{session_id}/amend": "record.amend",
    "GET /api/v1/exits-to-sign": "exit.sign",
    "GET /api/v1/exits/{exit_id}": "session.read",
    "POST /api/v1/exits/{exit_id}/return": "exit.update",
    "POST /api/v1/exits/{exit_id}/check-in": "exit.update",
    "POST /api/v1/exits/{exit_id}/inform": "exit.update",
    "POST /api/v1/exits/{exit_id}/safeguards": "exit.update",
    "POST /api/v1/exits/{exit_id}/ems": "exit.update",
    "POST /api/v1/exits/{exit_id}/attendant": "exit.update",
    "POST /api/v1/exits/{exit_id}/classify": "exit.update",
    "POST /api/v1/exits/{exit_id}/sign": "exit.sign",
    "POST /api/v1/exits/{exit_id}/amend": "record.amend",
    "GET /api/v1/concerns/{concern_id}": "concerns.read",
    "POST /api/v1/concerns/{concern_id}/acknowledge": "concern.acknowledge",
    "POST /api/v1/concerns/{concern_id}/amend": ("record.amend", "concerns.read"),
    "POST /api/v1/records": "records.import",
    "GET /api/v1/fhir/Bundle": ("session.read", "findings.read"),
    "POST /api/v1/fhir/Bundle": "records.import",
    "GET /api/v1/findings": "findings.read",
    "POST /api/v1/findings/{key}/acknowledge": "finding.review",
    "POST /api/v1/findings/{key}/assign": "finding.review",
    "POST /api/v1/findings/{key}/resolve": "finding.review",
    "POST /api/v1/presence": "presence.report",
    "GET /api/v1/rooms/{room}/display": ROOM_DISPLAY,
    "GET /api/v1/rooms/{room}/display/events": ROOM_DISPLAY,
    "GET /api/v1/openapi.json": PUBLIC,
    "GET /api/docs": PUBLIC,
    # The pages (browser sessions).
    "GET /": PUBLIC,
    "GET /login": PUBLIC,
    "POST /login": PUBLIC,
    "GET /login/code": SIGNING_IN,
    "POST /login/code": SIGNING_IN,
    "GET /login/enrol": SIGNING_IN,
    "POST /login/enrol": SIGNING_IN,
    "POST /logout": SIGNED_IN,
    "GET /console": "session.start",
    "GET /console/events": "session.start",
    "POST /console/sessions": "session.start",
    "GET /console/sessions/{session_id}": "session.read",
    "POST /console/sessions/{session_id}/end": "session.end",
    "GET /console/sessions/{session_id}/step-out": "exit.declare",
    "POST /console/sessions/{session_id}/exits": "exit.declare",
    "GET /console/exits/{exit_id}": "session.read",
    "POST /console/exits/{exit_id}/return": "exit.update",
    "POST /console/exits/{exit_id}/safeguards": "exit.update",
    "POST /console/exits/{exit_id}/inform": "exit.update",
    "POST /console/exits/{exit_id}/ems": "exit.update",
    "POST /console/exits/{exit_id}/attendant": "exit.update",
    "POST /console/exits/{exit_id}/check-in": "exit.update",
    "POST /console/exits/{exit_id}/classify": "exit.update",
    "POST /console/exits/{exit_id}/sign": "exit.sign",
    "POST /console/exits/{exit_id}/amend": "record.amend",
    "GET /supervise": "session.read",
    "GET /supervise/dashboard": "dashboard.read",
    "GET /supervise/dashboard/sessions": "dashboard.read",
    "GET /supervise/dashboard/report": "dashboard.read",
    "POST /supervise/concerns/{concern_id}/acknowledge": "concern.acknowledge",
    "POST /supervise/findings/{key}/acknowledge": "finding.review",
    "POST /supervise/findings/{key}/assign": "finding.review",
    "POST /supervise/findings/{key}/resolve": "finding.review",
    # The pages' tables as CSV or JSON (`web/pages/exports.py`): as the page that shows each.
    "GET /supervise/export/findings.csv": "findings.read",
    "GET /supervise/export/findings.json": "findings.read",
    "GET /supervise/export/queue.csv": "findings.read",
    "GET /supervise/export/queue.json": "findings.read",
    "GET /supervise/export/concerns.csv": "concerns.read",
    "GET /supervise/export/concerns.json": "concerns.read",
    "GET /supervise/export/exits.csv": "session.read",
    "GET /supervise/export/exits.json": "session.read",
    "GET /supervise/export/billing.csv": "billing.read",
    "GET /supervise/export/billing.json": "billing.read",
    "GET /supervise/export/exits-by-week.csv": "dashboard.read",
    "GET /supervise/export/exits-by-week.json": "dashboard.read",
    "GET /supervise/export/therapist-share.csv": "dashboard.read",
    "GET /supervise/export/therapist-share.json": "dashboard.read",
    "GET /supervise/export/absences.csv": "dashboard.read",
    "GET /supervise/export/absences.json": "dashboard.read",
    "GET /supervise/export/findings-by-week.csv": "dashboard.read",
    "GET /supervise/export/findings-by-week.json": "dashboard.read",
    "GET /supervise/export/billing-by-week.csv": "dashboard.read",
    "GET /supervise/export/billing-by-week.json": "dashboard.read",
    "GET /supervise/export/sessions.csv": "dashboard.read",
    "GET /supervise/export/sessions.json": "dashboard.read",
    "GET /admin": "accounts.read",
    "GET /display/{room}": ROOM_DISPLAY,
    "GET /display/{room}/qr.svg": ROOM_DISPLAY,
    "GET /c/{session_id}/{code}": CONCERN_LINK,
    "POST /c/{session_id}/{code}": CONCERN_LINK,
    # Outside the app's routers: no data.
    "GET /healthz": PUBLIC,
    "GET /static": PUBLIC,
}

# The command line is the operator's: whoever runs it on the server holds the database and the
# key file, and every command reads and writes every practice (tenant scope ALL). It is listed
# here so that a new command is a deliberate addition to what the operator's role covers.
OPERATOR_COMMANDS: Final = frozenset(
    {
        "init", "demo", "serve", "import records", "export records",
        "import fhir", "export fhir", "import schedule", "generate", "audit",
        "billing", "summary", "verify", "checkpoint", "backup", "rebuild", "policy show", "report",
        "keys generate", "keys status", "keys rotate", "keys rewrap", "keys retire",
        "practices add", "practices help",
        "users add", "users list", "users password", "users disable", "users enable",
        "users mfa-reset",
        "rooms add", "rooms token", "rooms list", "rooms revoke",
        "tokens create", "tokens revoke",
        "sensors run", "sensors simulate",
    }
)  # fmt: skip


def operations_of(access: Access) -> tuple[str, ...]:
    """The operations a route needs (none for the kinds of `ACCESS_KINDS`)."""
    needs = (access,) if isinstance(access, str) else access
    return tuple(n for n in needs if n not in ACCESS_KINDS)


def roles_for(access: Access) -> frozenset[Role]:
    """The staff roles whose role lets them through a route that needs operations."""
    found = ALL_STAFF
    for operation in operations_of(access):
        found &= OPERATIONS[operation]
    return found


class Forbidden(PermissionError):
    """The user's role may not do the operation (the message names neither record nor data)."""


def allowed(user: User, operation: str) -> bool:
    return not user.disabled and user.role in OPERATIONS[operation]


def authorize(user: User, operation: str) -> None:
    if not allowed(user, operation):
        raise Forbidden(f"A {user.role} account may not do this ({operation}).")


def sees_only_own_sessions(user: User) -> bool:
    return user.role == "therapist"
