"""The role matrix: every operation names roles that exist, and the live workflow is the
therapist's alone."""

import pytest

from stepout.domain.accounts import ROLES, User
from stepout.domain.permissions import (
    OPERATIONS,
    Forbidden,
    allowed,
    authorize,
    sees_only_own_sessions,
)


def _user(role: str, disabled: bool = False) -> User:
    return User("u-1", "p1", "someone", role, disabled)  # type: ignore[arg-type]


def test_every_operation_allows_only_known_roles() -> None:
    for operation, roles in OPERATIONS.items():
        assert roles, operation
        assert roles <= set(ROLES), operation


@pytest.mark.parametrize(
    "operation", ["session.start", "exit.declare", "exit.update", "exit.sign", "session.end"]
)
def test_only_a_therapist_runs_a_session(operation: str) -> None:
    assert [r for r in ROLES if allowed(_user(r), operation)] == ["therapist"]


def test_a_disabled_account_may_do_nothing() -> None:
    for operation in OPERATIONS:
        assert not allowed(_user("admin", disabled=True), operation)
        assert not allowed(_user("therapist", disabled=True), operation)


def test_authorize_names_the_role_and_operation_only() -> None:
    with pytest.raises(Forbidden, match=r"biller .*exit\.declare"):
        authorize(_user("biller"), "exit.declare")
    authorize(_user("supervisor"), "concern.acknowledge")


def test_only_therapists_are_limited_to_their_own_sessions() -> None:
    assert [r for r in ROLES if sees_only_own_sessions(_user(r))] == ["therapist"]


def test_the_operations_guide_shows_the_matrix_as_it_is() -> None:
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    for operation, roles in OPERATIONS.items():
        cells = " | ".join("yes" if r in roles else "·" for r in ROLES)
        assert f"| `{operation}` | {cells} |" in guide, operation
