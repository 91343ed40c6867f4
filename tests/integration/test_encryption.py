"""Encryption at rest on both engines: what the tables hold, what the records show, what a
moved ciphertext does, key rotation under a running server, and a rebuild."""

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from stepout.adapters.db import Database, datakeys
from stepout.adapters.db.fieldcrypt import DecryptionError, FieldCrypt, is_sealed
from stepout.crypto import keyfile
from stepout.crypto.keys import KeyMaterial, Keys
from stepout.domain.commands import DeclareExit, Return, StartSession
from stepout.services.importing import import_records
from stepout.services.workflow import Workflow
from tests.integration.builders import snapshot
from tests.integration.sealing import Written, canaries, write_texts

SEALED_COLUMNS = {
    "exits": ("reason_note", "explanation", "client_attended_by"),
    "concerns": ("text",),
    "amendments": ("note",),
}


def _events(conn: Any) -> list[tuple[int, str, str, dict[str, Any]]]:
    rows = conn.execute(text("SELECT seq, kind, practice, data FROM events ORDER BY seq"))
    return [(seq, kind, practice, orjson.loads(data)) for seq, kind, practice, data in rows]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _read(db: Database, entity: str, record: str) -> Any:
    with db.uow(read_only=True) as uow:
        return getattr(uow.records, entity)(record)


def _all_read_back(db: Database, written: Written) -> None:
    with db.uow(read_only=True) as uow:
        for (entity, record, field), expected in written.fields.items():
            found = getattr(uow.records, entity)(record)
            assert getattr(found, field) == expected, (entity, record, field)


def test_the_ledger_and_the_projections_hold_ciphertext_only(db: Database) -> None:
    texts = canaries(140)
    write_texts(db, texts)
    with db.engine.connect() as conn:
        events = _events(conn)
        columns = {
            (table, column): [
                v for (v,) in conn.execute(text(f"SELECT {column} FROM {table}")) if v is not None
            ]
            for table, names in SEALED_COLUMNS.items()
            for column in names
        }
    raw = "\n".join(orjson.dumps(data).decode() for *_, data in events)
    assert not [t for t in texts if t in raw]
    for (table, column), values in columns.items():
        assert values, (table, column)
        assert all(is_sealed(v) for v in values), (table, column)
        assert not [t for t in texts if any(t in v for v in values)]
    # Every free-text value in the ledger is sealed, whatever the event.
    sealed = [s for *_, data in events for s in _strings(data) if is_sealed(s)]
    assert len(sealed) == len(texts)


def test_records_read_back_in_plain_text(db: Database) -> None:
    written = write_texts(db, canaries(140))
    _all_read_back(db, written)
    with db.uow(read_only=True) as uow:
        dumped = list(uow.records.dump())
    shown = {
        (type(r).__name__.lower(), r.id, name): getattr(r, name)
        for r in dumped
        for name in ("reason_note", "explanation", "client_attended_by", "text")
        if getattr(r, name, None) is not None
    }
    assert shown == written.fields


def test_amendment_notes_open_with_their_entry_bound_in(db: Database) -> None:
    written = write_texts(db, canaries(70))
    with db.uow(read_only=True) as uow:
        conn = uow.connection
        rows = conn.execute(
            text(
                "SELECT a.seq, e.practice, a.note, a.entity, a.subject, a.changes "
                "FROM amendments a JOIN events e ON e.seq = a.seq ORDER BY a.seq"
            )
        ).all()
        crypt = FieldCrypt(conn, db.keys)
        notes = [crypt.open(p, "amendment", str(seq), "note", note) for seq, p, note, *_ in rows]
        changed = [
            crypt.open(p, entity, subject, "explanation", orjson.loads(changes)["explanation"])
            for _, p, _, entity, subject, changes in rows
        ]
        assert rows
        assert set(notes) <= set(written.notes)
        assert changed == [
            written.fields["exit", subject, "explanation"] for *_, subject, _ in rows
        ]
        seq, practice, note, *_ = rows[0]
        with pytest.raises(DecryptionError, match=f"amendment {seq + 1}: note"):
            crypt.open(practice, "amendment", str(seq + 1), "note", note)


def _exits(written: Written) -> list[str]:
    return sorted({record for entity, record, _ in written.fields if entity == "exit"})


def _move(db: Database, sql: str, **params: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_a_ciphertext_moved_to_another_row_column_or_practice_does_not_decrypt(
    db: Database,
) -> None:
    a = write_texts(db, canaries(70), practice="p-a")
    b = write_texts(db, canaries(70), practice="p-b")
    x1, x2, x3, x4 = _exits(a)[:4]
    xb = _exits(b)[0]
    copy = "UPDATE exits SET {to} = (SELECT {frm} FROM exits WHERE id = :source) WHERE id = :target"
    # Another row of the same practice, same column.
    _move(db, copy.format(to="explanation", frm="explanation"), source=x1, target=x2)
    # Another column of the same row.
    _move(db, copy.format(to="reason_note", frm="explanation"), source=x3, target=x3)
    # Another practice's row.
    _move(db, copy.format(to="explanation", frm="explanation"), source=xb, target=x4)
    # A concern's text into an exit.
    concern = next(r for e, r, _ in a.fields if e == "concern")
    _move(
        db,
        "UPDATE exits SET client_attended_by = (SELECT text FROM concerns WHERE id = :source) "
        "WHERE id = :target",
        source=concern,
        target=x1,
    )
    for record, field in ((x2, "explanation"), (x3, "reason_note"), (x4, "explanation"),
                          (x1, "client_attended_by")):  # fmt: skip
        with pytest.raises(DecryptionError) as caught:
            _read(db, "exit", record)
        assert str(caught.value).startswith(f"exit {record}: {field}: ")
        assert (caught.value.entity, caught.value.record, caught.value.field) == (
            "exit",
            record,
            field,
        )
        assert "CANARY" not in str(caught.value)
    # What was not moved still reads.
    assert _read(db, "exit", _exits(a)[5]).explanation is not None


def test_plain_text_slipped_into_a_sealed_column_is_refused(db: Database) -> None:
    written = write_texts(db, canaries(35))
    x = _exits(written)[0]
    _move(db, "UPDATE exits SET explanation = 'planted text' WHERE id = :x", x=x)
    with pytest.raises(DecryptionError, match=f"exit {x}: explanation: .*not encrypted"):
        _read(db, "exit", x)
    _move(db, "UPDATE exits SET explanation = '  ' WHERE id = :x", x=x)
    assert _read(db, "exit", x).explanation == "  "  # blank text is stored as it is


def test_rebuilding_the_projections_reproduces_the_same_rows(db: Database) -> None:
    written = write_texts(db, canaries(140))
    with db.engine.connect() as conn:
        before = snapshot(conn)
    db.rebuild_projections()
    with db.engine.connect() as conn:
        assert snapshot(conn) == before
    _all_read_back(db, written)


# -- Keys: a key file of the test's own (rotating changes the file).


@pytest.fixture
def own_key(key_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "own.key"
    shutil.copy(key_file, path)
    return path


@pytest.fixture
def cli_env(db_url: str, own_key: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPOUT_SECRET_KEY_FILE", str(own_key))
    monkeypatch.setenv("STEPOUT_DATABASE_URL", db_url)
    return CliRunner()


@pytest.fixture
def admin(db_url: str, own_key: Path) -> Iterator[Database]:
    database = Database.open(db_url, keys=keyfile.load_keys(own_key), migrate=False)
    database.migrate()
    try:
        yield database
    finally:
        database.dispose()


def _stepout(runner: CliRunner, *args: str) -> str:
    from stepout.cli import app

    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _kek_versions(db: Database) -> dict[int, int]:
    with db.engine.connect() as conn:
        return datakeys.versions_in_use(conn)


class RunningServer(threading.Thread):
    """Writes and reads on its own Database while the test rotates keys: each round, a new
    practice (so a new data key) by import, and a live exit on the first practice."""

    def __init__(self, db: Database) -> None:
        super().__init__(name="running-server", daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.rounds = 0
        self.error: BaseException | None = None
        self.written: dict[tuple[str, str, str], str] = {}

    def run(self) -> None:
        try:
            while not self.stop.is_set() or self.rounds < 3:
                self._round(self.rounds)
                self.rounds += 1
        except BaseException as e:  # handed to the test
            self.error = e

    def _round(self, n: int) -> None:
        practice, words = f"p-run-{n:03d}", f"FAKE-CANARY-run-{n:03d}"
        line = {
            "kind": "exit", "id": f"e-run-{n:03d}", "session": f"s-run-{n:03d}",
            "source": "declared", "left_at": "2026-05-04T10:10:00+00:00",
            "explanation": words,
        }  # fmt: skip
        session = {
            "kind": "session", "id": f"s-run-{n:03d}", "practice": practice,
            "therapist": "t-run", "client": "client-run", "room": "room-run",
            "modality": "in_person", "start": "2026-05-04T10:00:00+00:00",
            "end": "2026-05-04T10:50:00+00:00",
        }  # fmt: skip
        with self.db.uow() as uow:
            import_records(uow, [orjson.dumps(session), orjson.dumps(line)])
        self.written["exit", f"e-run-{n:03d}", "explanation"] = words
        flow = Workflow(self.db.uow)
        therapist = f"t-live-run-{n:03d}"
        s = flow.start_session(
            StartSession(
                practice="p-canary",
                actor=therapist,
                therapist=therapist,
                client="client-x",
                room=f"room-run-{n:03d}",
                modality="telehealth",
            )
        )
        live = f"FAKE-CANARY-live-{n:03d}"
        x = flow.declare_exit(
            DeclareExit(
                practice="p-canary",
                actor=therapist,
                session=s.id,
                reason="technical",
                client_informed="before_leaving",
                explanation=live,
            )
        )
        flow.return_(Return(practice="p-canary", actor=therapist, exit=x.id))
        self.written["exit", x.id, "explanation"] = live
        with self.db.uow(read_only=True) as uow:  # reads what it wrote, and older records
            got = uow.records.exit(x.id)
            assert got is not None
            assert got.explanation == live
            assert len(list(uow.records.dump())) > 0


def test_rotation_rewraps_while_a_running_server_reads_and_writes(
    admin: Database, db_url: str, own_key: Path, cli_env: CliRunner
) -> None:
    written = write_texts(admin, canaries(70))
    server = Database.open(db_url, keys=keyfile.load_keys(own_key), migrate=False)
    running = RunningServer(server)
    try:
        running.start()
        _stepout(cli_env, "keys", "rotate")
        out = _stepout(cli_env, "keys", "rotate", "--retire")
        assert "removed encryption key versions 1, 2" in out
        assert "outside the data directory" in out
        running.stop.set()
        running.join(timeout=120)
        assert not running.is_alive()
        if running.error is not None:
            raise running.error
        assert running.rounds >= 3
        material = keyfile.read(own_key)
        assert (material.active, set(material.encryption)) == (3, {3})
        assert set(_kek_versions(admin)) == {3}
        # The running server still reads everything, old and new; so does a restarted one.
        _all_read_back(server, written)
        restarted = Database.open(db_url, keys=keyfile.load_keys(own_key), migrate=False)
        try:
            _all_read_back(restarted, written)
            _all_read_back(restarted, Written("", running.written))
        finally:
            restarted.dispose()
        assert all(r.ok for r in [server.verify_ledger()])
    finally:
        running.stop.set()
        running.join(timeout=120)
        server.dispose()


def test_status_shows_versions_and_counts_without_secrets(
    admin: Database, own_key: Path, cli_env: CliRunner
) -> None:
    write_texts(admin, canaries(35), practice="p-one")
    write_texts(admin, canaries(35), practice="p-two")
    out = _stepout(cli_env, "keys", "status")
    assert "version 1 (active): wraps 2 data keys" in out
    secrets = orjson.loads(own_key.read_bytes())
    assert secrets["root"] not in out
    assert secrets["encryption"]["1"] not in out


def test_a_new_data_key_generation_serves_new_writes_and_old_ones_still_read(
    admin: Database, cli_env: CliRunner
) -> None:
    old = write_texts(admin, canaries(35))
    _stepout(cli_env, "keys", "rotate", "--data-keys")
    with admin.engine.connect() as conn:
        gens = datakeys.generations(conn)
    assert gens == {1: 1, 2: 1}
    flow = Workflow(admin.uow)
    s = flow.start_session(
        StartSession(
            practice="p-canary",
            actor="t-9",
            therapist="t-9",
            client="client-9",
            room="room-9",
            modality="telehealth",
        )
    )
    x = flow.declare_exit(
        DeclareExit(
            practice="p-canary",
            actor="t-9",
            session=s.id,
            reason="technical",
            client_informed="before_leaving",
            explanation="FAKE-CANARY-generation-two",
        )
    )
    with admin.engine.connect() as conn:
        stored = conn.execute(text("SELECT explanation FROM exits WHERE id = :x"), {"x": x.id})
        assert stored.scalar_one().startswith("so1.2.")
    assert _read(admin, "exit", x.id).explanation == "FAKE-CANARY-generation-two"
    _all_read_back(admin, old)


def test_an_unknown_key_version_is_a_clear_error(admin: Database, db_url: str) -> None:
    written = write_texts(admin, canaries(35))
    x = _exits(written)[0]
    root = admin.keys.material.root
    elsewhere = Keys(KeyMaterial(root=root, encryption={2: b"k" * 32}, active=2))
    other = Database.open(db_url, keys=elsewhere, migrate=False)
    try:
        with pytest.raises(DecryptionError) as caught:
            _read(other, "exit", x)
        message = str(caught.value)
        assert message.startswith(f"exit {x}: ")
        assert "encryption key version 1, which the key file does not hold" in message
        assert "CANARY" not in message
    finally:
        other.dispose()
    wrong = Keys(KeyMaterial(root=root, encryption={1: b"w" * 32}, active=1))
    other = Database.open(db_url, keys=wrong, migrate=False)
    try:
        with pytest.raises(DecryptionError, match="does not unwrap with encryption key version 1"):
            _read(other, "exit", x)
    finally:
        other.dispose()


def test_a_practice_gets_one_data_key_however_many_writers_create_it(
    admin: Database, db_url: str, own_key: Path
) -> None:
    with admin.engine.connect() as first, first.begin():
        made, inserted = datakeys.create(first, admin.keys, "p-new", 1)
    assert inserted
    with admin.engine.connect() as second, second.begin():
        again, inserted = datakeys.create(second, admin.keys, "p-new", 1)
    assert not inserted
    assert again == made
    # Two servers importing into one new practice at once: one key, and all reads back.
    servers = [
        Database.open(db_url, keys=keyfile.load_keys(own_key), migrate=False) for _ in range(2)
    ]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            start.wait()
            write_texts_for(servers[i], i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        with admin.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT count(*) FROM data_keys WHERE practice = 'p-together'")
            ).scalar_one()
        assert rows == 1
        for i in range(2):
            assert _read(admin, "exit", f"e-together-{i}").explanation == f"FAKE-CANARY-{i}"
    finally:
        for s in servers:
            s.dispose()


def write_texts_for(db: Database, i: int) -> None:
    session = {
        "kind": "session", "id": f"s-together-{i}", "practice": "p-together",
        "therapist": "t-1", "client": "client-1", "room": "room-1", "modality": "in_person",
        "start": "2026-05-04T10:00:00+00:00", "end": "2026-05-04T10:50:00+00:00",
    }  # fmt: skip
    exit_ = {
        "kind": "exit", "id": f"e-together-{i}", "session": f"s-together-{i}",
        "source": "declared", "left_at": "2026-05-04T10:10:00+00:00",
        "explanation": f"FAKE-CANARY-{i}",
    }  # fmt: skip
    with db.uow() as uow:
        import_records(uow, [orjson.dumps(session), orjson.dumps(exit_)])


def test_several_machines_add_the_version_first_and_rewrap_later(
    admin: Database, db_url: str, own_key: Path, cli_env: CliRunner
) -> None:
    written = write_texts(admin, canaries(35))
    _stepout(cli_env, "keys", "rotate", "--no-rewrap")
    assert _kek_versions(admin) == {1: 1}
    # A server with the old key file still reads; then every machine has the new file.
    _all_read_back(admin, written)
    out = _stepout(cli_env, "keys", "rewrap")
    assert "Re-wrapped 1 data key under version 2" in out
    assert _kek_versions(admin) == {2: 1}
    restarted = Database.open(db_url, keys=keyfile.load_keys(own_key), migrate=False)
    try:
        _all_read_back(restarted, written)
    finally:
        restarted.dispose()


def test_retiring_refuses_while_a_data_key_needs_a_version_the_file_lacks(
    admin: Database, own_key: Path, cli_env: CliRunner
) -> None:
    write_texts(admin, canaries(35))
    material = keyfile.read(own_key)
    keyfile.write(own_key, KeyMaterial(material.root, {2: b"n" * 32}, 2))
    from stepout.cli import app

    result = cli_env.invoke(app, ["keys", "retire"])
    assert result.exit_code != 0
    assert "encryption key version 1, which the key file does not hold" in result.output
    status = _stepout(cli_env, "keys", "status")
    assert "version 1: wraps 1 data key: MISSING from the key file" in status
