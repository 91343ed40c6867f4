"""The ledger's event catalogue: only its kinds fold into records."""

import pytest

from stepout.domain.events import KINDS, Event, EvolveError, evolve
from stepout.domain.records import Session


def test_an_event_kind_outside_the_catalogue_is_refused() -> None:
    session = Session("s1", "p1", "t1", "c1", "r1", "in_person", 0, 60_000_000)
    with pytest.raises(EvolveError, match="not an event kind"):
        evolve(session, Event("session.deleted", "p1", "s1", 0, {}))


def test_every_catalogued_kind_is_an_entity_and_a_verb() -> None:
    for kind in KINDS:
        entity, _, verb = kind.partition(".")
        assert entity in {"practice", "session", "exit", "concern", "finding", "appointment"}
        assert verb
