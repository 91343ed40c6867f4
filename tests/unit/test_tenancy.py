"""The tenant scope: a practice, ALL, or none; entered per context, restored on leaving, and
never a practice named `*` (the database's wildcard)."""

import contextvars
import threading

import pytest

from stepout.adapters.db import tenancy


def test_the_tests_run_as_the_operator_unless_they_say_otherwise() -> None:
    assert tenancy.current() is tenancy.ALL  # tests/conftest.py
    with tenancy.sealed():
        assert tenancy.current() is None
        with pytest.raises(tenancy.NoTenantScope, match="no practice scope"):
            tenancy.require()
    assert tenancy.current() is tenancy.ALL


def test_a_scope_is_entered_and_left() -> None:
    with tenancy.scope("p1"):
        assert tenancy.require() == "p1"
        assert tenancy.covers("p1")
        assert not tenancy.covers("p2")
        with tenancy.scope(tenancy.ALL):
            assert tenancy.covers("p2")
        with tenancy.sealed():
            assert not tenancy.covers("p1")
        assert tenancy.current() == "p1"
    assert tenancy.current() is tenancy.ALL


@pytest.mark.parametrize("bad", ["*", "", None, 3])
def test_a_scope_is_a_practice_id_or_all(bad: object) -> None:
    with pytest.raises(ValueError, match="practice id or ALL"), tenancy.scope(bad):  # type: ignore[arg-type]
        pass
    assert tenancy.setting_value(tenancy.ALL) == tenancy.WILDCARD
    assert tenancy.setting_value(None) == ""
    assert tenancy.setting_value("p1") == "p1"


def test_a_process_without_a_default_has_no_scope_in_a_new_thread() -> None:
    """The web app's process has no default: a thread it starts has no scope; the tests'
    process (and the command line's) has ALL."""
    seen: list[object] = []

    def look() -> None:
        seen.append(tenancy.current())

    tenancy.set_process_default(None)
    try:
        worker = threading.Thread(target=look)
        worker.start()
        worker.join()
    finally:
        tenancy.set_process_default(tenancy.ALL)
    assert seen == [None]


def test_a_copied_context_carries_the_scope_and_its_changes_stay_there() -> None:
    """What FastAPI does for a sync endpoint: the worker thread runs in a copy of the
    request's context."""
    with tenancy.scope("p1"):
        context = contextvars.copy_context()
    assert context.run(tenancy.current) == "p1"

    def enter_another() -> object:
        tenancy.enter("p2")
        return tenancy.current()

    assert context.run(enter_another) == "p2"
    assert tenancy.current() is tenancy.ALL
