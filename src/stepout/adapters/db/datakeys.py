"""Each practice's data keys: created on first use, wrapped with the key file's encryption
keys, and re-wrapped by `stepout keys rotate`.

A data key is 32 random bytes (AES-256-GCM) that encrypts a practice's free-text fields
(`fieldcrypt`). It is stored only wrapped: encrypted with AES-GCM under the key-encryption key
(KEK) of one version of the key file (`Keys.kek`), with associated data that binds the
practice and the generation, so that a wrapped key copied to another practice's row does not
unwrap. `wrapped` is the 12-byte nonce, then the ciphertext and its 16-byte tag.

A practice starts with generation 1; `stepout keys rotate --data-keys` adds a generation, which
new writes use, while the older ones stay for what they encrypted. Rotating the key file's
encryption key re-wraps every data key (`rewrap`) without touching the data it encrypts.
"""

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from stepout.adapters.db import tenancy
from stepout.adapters.db.engine import write_connection
from stepout.adapters.db.tables import DataKeyRow
from stepout.crypto.keys import Keys, UnknownKeyVersion
from stepout.domain.instants import now

K: Final = DataKeyRow.__table__.c
WRAP_LABEL: Final = "stepout/data-key/1"
DATA_KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
REWRAP_BATCH: Final = 100  # data keys re-wrapped per transaction: writers wait only briefly


class DataKeyError(ValueError):
    """A data key is missing or cannot be unwrapped. Names the practice, the generation and the
    key version, never a key."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    practice: str
    generation: int
    kek_version: int
    wrapped: bytes


def _wrap_ad(practice: str, generation: int) -> bytes:
    return orjson.dumps([WRAP_LABEL, practice, generation])


def wrap(keys: Keys, version: int, practice: str, generation: int, data_key: bytes) -> WrappedKey:
    """`data_key` wrapped with the KEK of `version`."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(keys.kek(version)).encrypt(nonce, data_key, _wrap_ad(practice, generation))
    return WrappedKey(practice, generation, version, nonce + sealed)


def unwrap(keys: Keys, key: WrappedKey) -> bytes:
    """The data key itself; `DataKeyError` if its KEK is not in the key file or it does not
    unwrap (another key file, or an altered row)."""
    what = f"the data key of practice {key.practice} (generation {key.generation})"
    try:
        kek = keys.kek(key.kek_version)
    except UnknownKeyVersion:
        raise DataKeyError(
            f"{what} is wrapped with encryption key version {key.kek_version}, which the key "
            "file does not hold: use the key file (or the backup of it) that has that version"
        ) from None
    nonce, sealed = key.wrapped[:NONCE_BYTES], key.wrapped[NONCE_BYTES:]
    try:
        return AESGCM(kek).decrypt(nonce, sealed, _wrap_ad(key.practice, key.generation))
    except InvalidTag:
        raise DataKeyError(
            f"{what} does not unwrap with encryption key version {key.kek_version}: the key "
            "file is not the one this database was written with, or the key was altered"
        ) from None


def _wrapped(row: Any) -> WrappedKey:
    return WrappedKey(row[0], row[1], row[2], bytes(row[3]))


_COLUMNS: Final = (K.practice, K.generation, K.kek_version, K.wrapped)


def find(conn: Connection, practice: str, generation: int) -> WrappedKey | None:
    row = conn.execute(
        select(*_COLUMNS).where(K.practice == practice, K.generation == generation)
    ).first()
    return None if row is None else _wrapped(row)


def latest(conn: Connection, practices: Iterable[str]) -> dict[str, WrappedKey]:
    """The highest generation of each practice's data key, for those that have one."""
    wanted = sorted(set(practices))
    found: dict[str, WrappedKey] = {}
    for row in conn.execute(select(*_COLUMNS).where(K.practice.in_(wanted))):
        key = _wrapped(row)
        if key.practice not in found or key.generation > found[key.practice].generation:
            found[key.practice] = key
    return found


def create(conn: Connection, keys: Keys, practice: str, generation: int) -> tuple[WrappedKey, bool]:
    """Store a new random data key for (`practice`, `generation`), wrapped with the key file's
    active version, unless one is already there (two writers at once: the first one's wins).
    Returns the stored key and whether this call stored it."""
    keys.refresh()  # the active version as the key file says now (a rotation may have run)
    new = wrap(keys, keys.active_version, practice, generation, os.urandom(DATA_KEY_BYTES))
    values = {
        "practice": practice,
        "generation": generation,
        "kek_version": new.kek_version,
        "wrapped": new.wrapped,
        "created_us": now(),
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(DataKeyRow).values(values).on_conflict_do_nothing()
    inserted = conn.execute(stmt.returning(K.generation)).first() is not None
    stored = find(conn, practice, generation)
    if stored is None:  # not expected: the row was there or inserted just now
        raise DataKeyError(f"the data key of practice {practice} could not be stored")
    return stored, inserted


def versions_in_use(conn: Connection) -> dict[int, int]:
    """How many data keys each encryption key version wraps."""
    stmt = select(K.kek_version, func.count()).group_by(K.kek_version)
    return {int(version): int(count) for version, count in conn.execute(stmt)}


def generations(conn: Connection) -> dict[int, int]:
    """How many practices have a data key of each generation."""
    stmt = select(K.generation, func.count()).group_by(K.generation)
    return {int(generation): int(count) for generation, count in conn.execute(stmt)}


def _write(engine: Engine) -> Connection:
    conn = write_connection(engine)
    tenancy.bind(conn, tenancy.ALL)  # an operator's command: every practice's keys
    return conn


def rewrap(
    engine: Engine, keys: Keys, version: int, progress: Callable[[int], None] | None = None
) -> int:
    """Re-wrap every data key not wrapped with `version` under it, `REWRAP_BATCH` keys per
    write transaction, so that a running server's writes wait only briefly. The data keys
    themselves, and so the data, stay as they are. Returns how many were re-wrapped."""
    done = 0
    while True:
        with _write(engine) as conn, conn.begin():
            batch = rewrap_batch(conn, keys, version, REWRAP_BATCH)
        done += batch
        if progress is not None and batch:
            progress(done)
        if batch < REWRAP_BATCH:
            return done


def rewrap_batch(conn: Connection, keys: Keys, version: int, limit: int) -> int:
    rows = conn.execute(
        select(*_COLUMNS)
        .where(K.kek_version != version)
        .order_by(K.practice, K.generation)
        .limit(limit)
    ).all()
    for row in rows:
        old = _wrapped(row)
        new = wrap(keys, version, old.practice, old.generation, unwrap(keys, old))
        conn.execute(
            update(DataKeyRow)
            .where(
                K.practice == old.practice,
                K.generation == old.generation,
                K.kek_version == old.kek_version,
            )
            .values(kek_version=new.kek_version, wrapped=new.wrapped)
        )
    return len(rows)


def retire_check(engine: Engine, keys: Keys, retire: Callable[[set[int]], None]) -> dict[int, int]:
    """Re-wrap what is left under the active version, then, in the same write transaction
    (so that no writer creates a data key meanwhile), call `retire(versions in use)` if every
    data key uses the active version. Returns the counts by version it saw; `retire` was called
    exactly when they name the active version only."""
    active = keys.active_version
    with _write(engine) as conn, conn.begin():
        while rewrap_batch(conn, keys, active, REWRAP_BATCH):
            pass
        counts = versions_in_use(conn)
        if set(counts) <= {active}:
            retire(set(counts))
    return counts


def add_generations(engine: Engine, keys: Keys) -> int:
    """A new data key generation for every practice that has a data key; new writes use it,
    older generations stay for what they encrypted. Returns how many were added."""
    with _write(engine) as conn, conn.begin():
        practices = list(conn.execute(select(K.practice).distinct()).scalars())
    added = 0
    for i in range(0, len(practices), REWRAP_BATCH):
        with _write(engine) as conn, conn.begin():
            tops = latest(conn, practices[i : i + REWRAP_BATCH])
            for practice, top in tops.items():
                added += create(conn, keys, practice, top.generation + 1)[1]
    return added
