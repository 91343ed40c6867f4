"""The audit trail on both engines: records chain and verify, commit or roll back with the
ledger write they describe, and concurrent writers never fork the chain."""

import threading

import pytest
from sqlalchemy import text

from stepout.adapters.db import Database
from stepout.adapters.db import audit as sql_audit
from stepout.adapters.db.audit import SqlAudit
from stepout.crypto.keys import Keys, generated_material
from stepout.domain.audit_trail import DOMAIN, AuditEntry, canonical_audit, verify_audit_chain
from stepout.domain.chain import GENESIS, entry_hash
from stepout.domain.commands import DeclareExit, StartSession
from stepout.services.audit import AuditRecord, Caller, audit_import, write_alone
from stepout.services.workflow import Workflow
from tests.integration.builders import at, practice, session

ALICE = Caller("t-001", "p1", "203.0.113.7", "api")


def entries(db: Database) -> list[AuditEntry]:
    with db.engine.connect() as conn:
        found = list(sql_audit.entries(conn))
        conn.rollback()
    return found


def verify(db: Database) -> sql_audit.VerifyResult:
    with db.engine.connect() as conn:
        result = sql_audit.verify(conn, db.keys.chain_key)
        conn.rollback()
    return result


def ledger_count(db: Database) -> int:
    with db.engine.connect() as conn:
        n = conn.execute(text("SELECT COUNT(*) FROM events")).scalar_one()
        conn.rollback()
    return int(n)


def test_records_chain_with_the_chain_key_and_verify(db: Database) -> None:
    write_alone(db.uow, ALICE.record("session.read", "s-1"))
    write_alone(db.uow, ALICE.record("session.list", "2026-03-02", count=3))
    write_alone(db.uow, AuditRecord("anonymous", "login.failed", "failed", "198.51.100.2", "page"))
    found = entries(db)
    assert [e.seq for e in found] == [1, 2, 3]
    first, second, third = found
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash
    assert (second.action, second.target, second.item_count) == ("session.list", "2026-03-02", 3)
    assert (third.practice, third.actor, third.outcome) == (None, "anonymous", "failed")
    assert first.hash == entry_hash(db.keys.chain_key, GENESIS, first.canonical())
    assert first.canonical().startswith(f'["{DOMAIN}",'.encode())
    result = verify(db)
    assert result.ok
    assert result.checked == 3
    assert result.head == third.hash


def test_verification_names_the_first_altered_entry(db: Database) -> None:
    for n in range(3):
        write_alone(db.uow, ALICE.record("exit.read", f"e-{n}"))
    found = entries(db)
    altered = [found[0], found[1]._replace(target="e-9"), found[2]]
    result = verify_audit_chain(altered, db.keys.chain_key)
    assert (result.checked, result.first_broken) == (1, 2)
    assert verify_audit_chain([found[0], found[2]], db.keys.chain_key).first_broken == 2
    # Another key (someone with the database but not the key file) cannot forge a hash.
    assert verify_audit_chain(found, Keys(generated_material()).chain_key).first_broken == 1


def test_an_audit_entry_cannot_pass_for_a_ledger_entry() -> None:
    canonical = canonical_audit(1, 0, "p1", "t-001", "session.read", "s-1", "ok", "cli", "cli", 1)
    assert not canonical.startswith(b"[1,")


def test_a_write_and_its_audit_record_commit_together(db: Database) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice()])
        uow.audit.record(ALICE.record("session.start", "s-1"))
        uow.commit()
    assert ledger_count(db) == 1
    assert [e.action for e in entries(db)] == ["session.start"]


def test_a_failure_after_the_ledger_append_leaves_neither(db: Database) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice()])
        uow.commit()

    def fail_after_both() -> None:
        with db.uow() as uow:
            uow.ledger.append([session("s-1")])
            uow.audit.record(ALICE.record("session.start", "s-1"))
            raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="disk is full"):
        fail_after_both()
    assert ledger_count(db) == 1
    assert entries(db) == []

    def fail_in_the_audit_write() -> None:
        with db.uow() as uow:
            uow.ledger.append([session("s-2")])
            uow.audit.at_commit(lambda: ALICE.record("not.an.action"))
            uow.commit()

    # A failure of the audit write itself takes the ledger append with it, through commit.
    with pytest.raises(ValueError, match="unknown audit action"):
        fail_in_the_audit_write()
    assert ledger_count(db) == 1
    assert entries(db) == []
    with db.uow(read_only=True) as uow:
        assert uow.records.session("s-2") is None


def test_the_workflow_records_a_command_in_its_transaction(db: Database) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice()])
        uow.commit()
    workflow = Workflow(db.uow, clock=lambda: at(0))
    started = workflow.run(
        StartSession(
            practice="p1",
            actor="t-001",
            therapist="t-001",
            client="c-1",
            room="r1",
            modality="in_person",
        ),
        caller=ALICE,
    ).record
    declared = workflow.run(
        DeclareExit(practice="p1", actor="t-001", session=started.id, reason="technical"),
        caller=ALICE,
    ).record
    found = entries(db)
    assert [(e.action, e.target, e.practice, e.actor) for e in found] == [
        ("session.start", started.id, "p1", "t-001"),
        ("exit.declare", declared.id, "p1", "t-001"),
    ]
    assert verify(db).ok


def test_a_command_whose_audit_write_fails_stores_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice(), session("s-1", minutes=None)])
        uow.commit()

    def fail(self: SqlAudit, entry: AuditRecord) -> None:
        raise RuntimeError("the audit write failed")

    monkeypatch.setattr(SqlAudit, "record", fail)
    with pytest.raises(RuntimeError, match="audit write failed"):
        Workflow(db.uow, clock=lambda: at(1)).run(
            DeclareExit(practice="p1", actor="t-001", session="s-1", reason="technical"),
            caller=ALICE,
        )
    assert ledger_count(db) == 2
    assert entries(db) == []
    with db.uow(read_only=True) as uow:
        assert uow.records.exits_of_session("s-1") == []


def test_an_import_records_its_lines_in_its_transaction(db: Database) -> None:
    from stepout.services.importing import ImportRejected, import_records

    with db.uow() as uow:
        uow.ledger.append([practice()])
        uow.commit()
    good = [
        b'{"kind": "session", "id": "s-1", "practice": "p1", "therapist": "t-001", '
        b'"client": "c-0042", "room": "r1", "modality": "in_person", '
        b'"start": "2026-02-02T10:00:00+00:00", "end": "2026-02-02T10:55:00+00:00"}\n',
    ]
    with db.uow() as uow:
        told = audit_import(uow, ALICE)
        import_records(uow, good, progress=told)
    assert [(e.action, e.item_count) for e in entries(db)] == [("records.import", 1)]

    def rejected() -> None:
        with db.uow() as uow:
            import_records(uow, [b"not json\n"], progress=audit_import(uow, ALICE))

    with pytest.raises(ImportRejected):
        rejected()
    assert len(entries(db)) == 1


WRITERS = 3
ROUNDS = 20


def test_concurrent_writers_never_fork_the_audit_chain(db: Database, db_url: str) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice()])
        uow.commit()
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        mine = Database.open(db_url, keys=db.keys)  # its own engine and connections
        try:
            start.wait()
            for i in range(ROUNDS):
                if i % 2:
                    write_alone(mine.uow, ALICE.record("session.read", f"s{n}-{i}"))
                    continue
                with mine.uow() as uow:
                    uow.ledger.append([session(f"s{n}-{i}", at(i))])
                    uow.audit.record(ALICE.record("session.start", f"s{n}-{i}"))
                    uow.commit()
        except BaseException as e:
            errors.append(e)
        finally:
            mine.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = verify(db)
    assert result.ok, result
    assert result.checked == WRITERS * ROUNDS
    assert db.verify_ledger().ok
