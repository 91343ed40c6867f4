"""Attack test 6(c): tamper with a copy of a real database and `stepout verify` finds it.

A database is built once per engine (synthetic records imported, live sessions through the
workflow, reads in the audit trail) and checkpointed; each test tampers with a fresh copy of it
as someone with the database's owner rights would (lifting the append-only guard first) and
runs `stepout verify` through the command line. Every tampering of either chain is reported,
naming the chain and the entry; an untouched copy verifies with no false alarm. Cutting the
tail leaves a shorter, intact chain: only the checkpoint tells, and the test shows both. The
long version is `python -m bench.tamper` (100,000 entries per chain)."""

import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from stepout.adapters.db import Database, tenancy
from stepout.cli import app
from stepout.crypto.keys import Keys, generated_material
from stepout.domain.instants import now
from stepout.services.checkpoint import parse, take
from tests.conftest import sqlalchemy_url
from tests.tampering import (
    AUDIT,
    CHAINS,
    LEDGER,
    ChainTable,
    count,
    delete,
    flip_byte,
    forge,
    forge_appended,
    hmac_with,
    plain_sha256,
    populate,
    rewrite_from,
    swap,
    truncate_tail,
)

SESSIONS = 1500  # about 1,700 ledger entries; with the reads, about 1,500 audit entries
READS = 1500


@dataclass(frozen=True)
class Original:
    """The database every test copies, and a checkpoint of it."""

    engine: str
    url: str
    checkpoint: Path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def original(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, keys: Keys
) -> Iterator[Original]:
    folder = tmp_path_factory.mktemp("tamper")
    if request.param == "sqlite":
        url, drop = f"sqlite:///{folder / 'original.db'}", None
    else:
        server: str = request.getfixturevalue("postgres_server")
        name = f"stepout_tamper_{secrets.token_hex(5)}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url, drop = sqlalchemy_url(f"{server.rpartition('/')[0]}/{name}"), (server, name)
    db = Database.open(url, keys=keys, migrate=False)
    try:
        db.migrate()
        populate(db, sessions=SESSIONS, live=5, reads=READS)
        checkpoint = folder / "checkpoint.json"
        checkpoint.write_bytes(take(db, keys, url, now()).to_json())
    finally:
        db.dispose()
    try:
        yield Original(request.param, url, checkpoint)
    finally:
        if drop is not None:
            _drop(*drop)


def _drop(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def copy(original: Original, tmp_path: Path, keys: Keys) -> Iterator[Database]:
    """A fresh copy of the original database, to tamper with."""
    if original.engine == "sqlite":
        source = original.url.removeprefix("sqlite:///")
        target = tmp_path / "copy.db"
        for suffix in ("", "-wal"):  # a WAL left behind holds committed pages too
            if Path(source + suffix).exists():
                shutil.copy(source + suffix, f"{target}{suffix}")
        db = Database.open(f"sqlite:///{target}", keys=keys, migrate=False)
        try:
            yield db
        finally:
            db.dispose()
        return
    server = request_server(original.url)
    name = f"stepout_copy_{secrets.token_hex(5)}"
    source_name = original.url.rpartition("/")[2]
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(source_name)
            )
        )
    db = Database.open(sqlalchemy_url(f"{server.rpartition('/')[0]}/{name}"), keys=keys)
    try:
        yield db
    finally:
        db.dispose()
        _drop(server, name)


def request_server(url: str) -> str:
    """The admin conninfo of the server `url` is on."""
    base = url.replace("postgresql+psycopg://", "postgresql://", 1).rpartition("/")[0]
    return f"{base}/postgres"


def verify(
    db: Database, monkeypatch: pytest.MonkeyPatch, checkpoint: Path | None = None
) -> tuple[int, str]:
    """`stepout verify [--checkpoint FILE]` on `db`: its exit code and its output on one line."""
    monkeypatch.setenv("STEPOUT_DATABASE_URL", db.engine.url.render_as_string(False))
    args = ["verify"] if checkpoint is None else ["verify", "--checkpoint", str(checkpoint)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


def tamper(db: Database, change: Callable[[Connection], object]) -> None:
    with tenancy.scope(tenancy.ALL), db.engine.begin() as conn:
        change(conn)


def middle(db: Database, chain: ChainTable) -> int:
    with tenancy.scope(tenancy.ALL), db.engine.connect() as conn:
        return count(conn, chain) // 2


def label(chain: ChainTable) -> str:
    return "Ledger" if chain is LEDGER else "Audit trail"


def test_an_untouched_copy_verifies_with_no_false_alarm(
    copy: Database, original: Original, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = verify(copy, monkeypatch, original.checkpoint)
    assert code == 0, output
    assert "Ledger intact" in output
    assert "Audit trail intact" in output
    assert "holds" in output
    assert "error" not in output
    with tenancy.scope(tenancy.ALL), copy.engine.connect() as conn:
        assert count(conn, LEDGER) > SESSIONS
        assert count(conn, AUDIT) >= READS


WRONG_KEY = b"k" * 32
# (what is done, how the break reads): each is done to entry `middle` of a chain.
TAMPERINGS: dict[str, tuple[Callable[[Connection, ChainTable, int], object], str]] = {
    "flip a byte of the entry's text": (
        lambda c, t, k: flip_byte(c, t, k, t.text_column), "does not match the"
    ),
    "flip a byte of another column": (
        lambda c, t, k: flip_byte(c, t, k, t.other_column), "does not match the"
    ),
    "flip a byte of the hash": (lambda c, t, k: flip_byte(c, t, k, "hash"), "does not match"),
    "flip a byte of prev_hash": (
        lambda c, t, k: flip_byte(c, t, k, "prev_hash"), "prev_hash does not match"
    ),
    "delete the entry": (lambda c, t, k: delete(c, t, k), "is missing"),
    "swap it with a later entry": (lambda c, t, k: swap(c, t, k, k + 7), "does not match"),
    "forge it with a plain SHA-256": (
        lambda c, t, k: forge(c, t, k, plain_sha256), "does not match the"
    ),
    "forge it with an HMAC under another key": (
        lambda c, t, k: forge(c, t, k, hmac_with, WRONG_KEY), "does not match the"
    ),
}  # fmt: skip


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: c.chain)
@pytest.mark.parametrize("kind", list(TAMPERINGS))
def test_every_tampering_is_found_at_its_entry(
    copy: Database, chain: ChainTable, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    change, reads = TAMPERINGS[kind]
    k = middle(copy, chain)
    tamper(copy, lambda conn: change(conn, chain, k))
    code, output = verify(copy, monkeypatch)
    assert code == 1, output
    assert f"error: {label(chain).lower()} broken at entry {k}:" in output
    assert reads in output
    other = AUDIT if chain is LEDGER else LEDGER
    assert f"{label(other)} intact" in output  # the other chain is not blamed


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: c.chain)
@pytest.mark.parametrize("digest", [plain_sha256, hmac_with], ids=["sha256", "hmac-other-key"])
def test_a_forged_entry_appended_at_the_end_is_found(
    copy: Database,
    chain: ChainTable,
    digest: Callable[[bytes, str, bytes], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No guard to lift: the triggers allow inserts. The forged hash gives it away."""
    forged: list[int] = []
    tamper(copy, lambda conn: forged.append(forge_appended(conn, chain, digest, WRONG_KEY)))
    code, output = verify(copy, monkeypatch)
    assert code == 1, output
    assert f"{label(chain).lower()} broken at entry {forged[0]}: hash does not match" in output


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: c.chain)
def test_a_cut_tail_is_found_only_against_a_checkpoint(
    copy: Database, original: Original, chain: ChainTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenancy.scope(tenancy.ALL), copy.engine.connect() as conn:
        total = count(conn, chain)
    tamper(copy, lambda conn: truncate_tail(conn, chain, total - 3))

    code, output = verify(copy, monkeypatch)
    assert code == 0, output  # the chain alone is intact, only shorter
    assert f"{label(chain)} intact: {total - 3:,} entries verified" in output

    code, output = verify(copy, monkeypatch, original.checkpoint)
    assert code == 1, output
    assert (
        f"error: {label(chain).lower()}, entry {total - 2}: entries {total - 2} to {total} "
        "are missing"
    ) in output


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: c.chain)
def test_history_rewritten_with_the_key_is_found_only_against_a_checkpoint(
    copy: Database,
    original: Original,
    chain: ChainTable,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone holding the key file can re-chain what they changed: the chain verifies, the
    signed checkpoint (kept elsewhere) does not."""
    k = middle(copy, chain)
    tamper(copy, lambda conn: rewrite_from(conn, chain, k, keys.chain_key))
    code, output = verify(copy, monkeypatch)
    assert code == 0, output
    code, output = verify(copy, monkeypatch, original.checkpoint)
    assert code == 1, output
    assert f"error: {label(chain).lower()}, entry" in output
    assert "rewritten" in output


def test_a_checkpoint_of_another_installation_is_refused(
    copy: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signed with another key file's key: it says nothing about this database."""
    other_keys = Keys(generated_material())
    other = Database.open(f"sqlite:///{tmp_path / 'other.db'}", keys=other_keys)
    try:
        populate(other, sessions=20, live=1, reads=5)
        foreign = take(other, other_keys, "sqlite:///other.db", now())
    finally:
        other.dispose()
    path = tmp_path / "foreign.json"
    path.write_bytes(foreign.to_json())
    code, output = verify(copy, monkeypatch, path)
    assert code == 1, output
    assert "checkpoint: signed with another key than this installation's" in output


def test_an_altered_checkpoint_is_refused(
    copy: Database, original: Original, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lowering the checkpoint's count, to hide a cut tail, breaks its signature."""
    altered = tmp_path / "altered.json"
    text = original.checkpoint.read_text()
    with tenancy.scope(tenancy.ALL), copy.engine.connect() as conn:
        total = count(conn, LEDGER)
    altered.write_text(text.replace(f'"count": {total}', f'"count": {total - 3}'))
    assert altered.read_text() != text
    code, output = verify(copy, monkeypatch, altered)
    assert code == 1, output
    assert "checkpoint: the signature does not match its content" in output


def test_a_row_removed_from_a_query_table_is_found(
    copy: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query tables are not chained (`stepout rebuild` rebuilds them), but a row added
    or removed behind the ledger's back shows in their counts."""
    with tenancy.scope(tenancy.ALL), copy.engine.begin() as conn:
        concerns = int(conn.execute(text("SELECT COUNT(*) FROM concerns")).scalar_one())
        conn.execute(text("DELETE FROM concerns WHERE pk = (SELECT MIN(pk) FROM concerns)"))
    code, output = verify(copy, monkeypatch)
    assert code == 1, output
    assert (
        f"error: query tables: the concerns table has {concerns - 1:,} rows where the ledger "
        f"makes {concerns:,}"
    ) in output
    assert "Ledger intact" in output
    copy.rebuild_projections()
    code, output = verify(copy, monkeypatch)
    assert code == 0, output
    assert "Query tables agree with the ledger." in output


def test_a_malformed_checkpoint_is_an_error(
    copy: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    code, output = verify(copy, monkeypatch, bad)
    assert code == 2
    assert "not a Stepout checkpoint file" in output


def test_the_checkpoint_command_writes_a_new_file_or_standard_output(
    copy: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPOUT_DATABASE_URL", copy.engine.url.render_as_string(False))
    path = tmp_path / "cp.json"
    result = CliRunner().invoke(app, ["checkpoint", "--out", str(path)])
    assert result.exit_code == 0, result.output
    written = parse(path.read_bytes())
    result = CliRunner().invoke(app, ["checkpoint", "--out", str(path)])
    assert result.exit_code == 2
    assert "already exists" in result.output
    result = CliRunner().invoke(app, ["checkpoint", "--out", "-"])
    assert result.exit_code == 0, result.output
    printed = parse(result.stdout.encode())
    assert printed.marks == written.marks
    assert make_url(printed.database).password is None
    code, output = verify(copy, monkeypatch, path)
    assert code == 0, output
