"""The FHIR Bundle out of and back into real storage (SQLite and PostgreSQL): the same bytes as
the in-memory store gives (the golden files), and the sessions round-trip."""

import io
from pathlib import Path

import pytest

from stepout.adapters.db import Database
from stepout.adapters.fhir.codes import RELEASES, Release
from stepout.domain.records import Session
from stepout.policy.model import load_policy
from stepout.services.fhir import BundleRejected, export_fhir, import_fhir
from stepout.services.importing import import_records
from stepout.services.ports import Selection
from tests.unit.test_fhir import AS_OF, GOLDEN, RECORDS


def export(db: Database, release: Release) -> bytes:
    out = io.BytesIO()
    with db.uow(read_only=True) as uow:
        export_fhir(uow.records, Selection(), load_policy(), AS_OF, release, out)
    return out.getvalue()


def sessions(db: Database) -> list[Session]:
    with db.uow(read_only=True) as uow:
        return [r for r in uow.records.dump() if isinstance(r, Session)]


@pytest.mark.parametrize("release", RELEASES)
def test_storage_gives_the_golden_bundle_and_the_sessions_round_trip(
    db: Database, release: Release, tmp_path: Path
) -> None:
    with db.uow() as uow:
        import_records(uow, RECORDS.read_bytes().splitlines())
    data = export(db, release)
    assert data == (GOLDEN / release / "bundle.json").read_bytes()

    other = Database.open(f"sqlite:///{tmp_path / 'copy.db'}", keys=db.keys, migrate=False)
    other.migrate()
    try:
        with other.uow() as uow:
            report = import_fhir(uow, data)
        assert (report.release, report.created) == (release, 5)
        assert sessions(other) == sessions(db)
    finally:
        other.dispose()


def test_a_rejected_bundle_stores_nothing(db: Database) -> None:
    with db.uow() as uow:
        import_records(uow, RECORDS.read_bytes().splitlines())
    data = export(db, "r5").replace(b'"value":"s3"', b'"value":"s1"')  # two Encounters s1
    with pytest.raises(BundleRejected) as caught, db.uow() as uow:
        import_fhir(uow, data)
    assert [e.field for e in caught.value.errors] == ["Encounter.identifier"]
    assert len(sessions(db)) == 5
