"""Who may do what: one matrix of operations and the roles allowed each. Every web route and
API operation names its operation here; a therapist is further limited to their own sessions
(checked where the session is read)."""

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
    "records.import": frozenset({"admin"}),
    "billing.read": frozenset({"admin", "supervisor", "biller"}),
    "accounts.read": frozenset({"admin"}),
}


class Forbidden(PermissionError):
    """The user's role may not do the operation (the message names neither record nor data)."""


def allowed(user: User, operation: str) -> bool:
    return not user.disabled and user.role in OPERATIONS[operation]


def authorize(user: User, operation: str) -> None:
    if not allowed(user, operation):
        raise Forbidden(f"A {user.role} account may not do this ({operation}).")


def sees_only_own_sessions(user: User) -> bool:
    return user.role == "therapist"
