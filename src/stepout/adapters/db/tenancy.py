"""Whose records a unit of work may touch: the tenant scope.

Every unit of work runs in a scope: one practice (a web request of a user, an API token or a
room display of that practice), or `ALL` (an operator's command line, which spans practices).
The scope lives in a context variable: the web layer enters the caller's practice for each
request (a thread the request hands work to gets a copy of it), the command line enters `ALL`.

Without a scope nothing is read: `SqlUnitOfWork` refuses to open (`NoTenantScope`), on every
engine. On PostgreSQL each transaction also tells the database its scope as it begins
(`set_config('stepout.practice', …, true)`: `engine.py`), and the row-level security policies
of migration 0007 show a transaction only its practice's rows (every row for `*`; none without
a setting): a second wall should a query forget its practice.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

from sqlalchemy import Connection

SETTING: Final = "stepout.practice"  # the PostgreSQL setting the policies read
WILDCARD: Final = "*"  # its value for ALL
OPTION: Final = "stepout_tenant_scope"  # the execution option that binds a connection's scope


class _All:
    """Every practice: operator commands (import, export, rebuild, verify, reports)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ALL"


ALL: Final = _All()
Scope = str | _All


class NoTenantScope(RuntimeError):
    """A unit of work was opened with no practice scope (a bug: nothing is read)."""


_UNSET: Final = object()
_scope: ContextVar[object] = ContextVar("stepout_tenant_scope", default=_UNSET)
_default: list[Scope | None] = [None]  # the process's scope where none was entered


def _checked(value: Scope | None) -> Scope | None:
    if value is None or isinstance(value, _All):
        return value
    if not isinstance(value, str) or not value or value == WILDCARD:
        raise ValueError("a tenant scope is a practice id or ALL")
    return value


def current() -> Scope | None:
    """The scope now: a practice id, ALL, or None (no scope: nothing may be read)."""
    value = _scope.get()
    if value is _UNSET:
        return _default[0]
    assert value is None or isinstance(value, str | _All)
    return value


def require() -> Scope:
    """The scope now; `NoTenantScope` without one."""
    found = current()
    if found is None:
        raise NoTenantScope(
            "no practice scope: enter one with stepout.adapters.db.tenancy.scope() "
            "(a practice id, or ALL for an operator command)"
        )
    return found


def covers(practice: str) -> bool:
    """Whether the scope now may touch a record of `practice`."""
    return reaches(current(), practice)


@contextmanager
def scope(value: Scope) -> Iterator[Scope]:
    """Run the block in `value`'s scope (a practice id, or ALL), then restore the one before."""
    checked = _checked(value)
    if checked is None:
        raise ValueError("a tenant scope is a practice id or ALL")
    token = _scope.set(checked)
    try:
        yield checked
    finally:
        _scope.reset(token)


@contextmanager
def sealed() -> Iterator[None]:
    """Run the block with no scope (whatever the process default): nothing may be read."""
    token = _scope.set(None)
    try:
        yield
    finally:
        _scope.reset(token)


def enter(value: Scope | None) -> None:
    """Set the scope for the rest of the current context (a web request's task, whose end
    discards it); None seals it: no scope, even where the process has a default."""
    _scope.set(_checked(value))


def set_process_default(value: Scope | None) -> None:
    """The scope of every context that entered none, in this process: ALL for the command
    line and the tests' own setup; None (the default) elsewhere. The web app seals each
    request (`enter(None)`) before it enters the caller's practice, whatever this says."""
    _default[0] = _checked(value)


def setting_value(value: Scope | None) -> str:
    """What `stepout.practice` holds for a scope: the practice id, `*`, or '' (no rows)."""
    if value is None:
        return ""
    return WILDCARD if isinstance(value, _All) else value


def bind(conn: Connection, value: Scope) -> None:
    """Fix `conn`'s scope for all its transactions (a unit of work's, chosen when it opens),
    whatever the context's scope when they begin."""
    conn.execution_options(**{OPTION: _checked(value)})


def bound(conn: Connection) -> Scope | None:
    """The scope of `conn`: the one a unit of work bound to it, else the context's."""
    value = conn.get_execution_options().get(OPTION, _UNSET)
    found = current() if value is _UNSET else value
    assert found is None or isinstance(found, str | _All)
    return found


def reaches(scope: Scope | None, practice: str) -> bool:
    """Whether `scope` may touch a record of `practice`."""
    return isinstance(scope, _All) or (scope is not None and scope == practice)
