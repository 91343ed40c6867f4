"""Field encryption: the free-text health fields, sealed with their practice's data key.

What is sealed (`SEALED`): an exit's `reason_note`, `explanation` and `client_attended_by`, the
note of an EMS decision, a concern's `text`, an amendment's `note` and the free-text values
in its `changes`, and the notes of a finding's review (acknowledged, resolved). They are
sealed in the ledger's events before they are chained (so the chain's HMAC covers the stored
ciphertext), and the projections copy the ciphertext as it is.
`SqlRecords` opens them when it builds records: everything above storage sees plain text.

A sealed value is text:

    so1.<generation>.<base64url(nonce (12 bytes) | ciphertext | tag (16 bytes))>

`so1` names the format (AES-256-GCM, this associated data); `generation` names the practice's
data key (`datakeys`). The associated data is the JSON array `["so1", practice, entity, id,
field]`: the entity is `exit`, `concern` or `amendment` (an amendment's id is its ledger entry,
`seq`); a value in an amendment's `changes` is bound to the record and field it changes, as
that field is. So a ciphertext copied into another row, another field or another practice's
record does not decrypt, and `DecryptionError` says which record and field, never the text.

Blank text (empty, or spaces only) is stored as it is: it says nothing that the length of a
ciphertext would not, and plain SQL can still tell that an explanation is missing.

A `FieldCrypt` belongs to one unit of work's connection. Unwrapped data keys are cached per
database engine (so, per process), except a key created by the transaction still open: that
one is kept for the transaction only, until a later transaction reads it back committed.
"""

import base64
import binascii
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, NamedTuple

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine

from stepout.adapters.db import datakeys
from stepout.crypto.keys import Keys
from stepout.domain.events import Event

FORMAT: Final = "so1"
PREFIX: Final = FORMAT + "."
NONCE_BYTES: Final = 12

# The free-text fields of each record, sealed in its events, its row and amendments' changes.
FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "session": (),  # client ids are pseudonymous: a session holds no free text
    "exit": ("reason_note", "explanation", "client_attended_by"),
    "concern": ("text",),
    # A finding's review (`finding_reviews`, keyed by the finding's key): its two notes.
    "finding": ("acknowledged_note", "resolved_note"),
}


class Plan(NamedTuple):
    """What to seal in an event of one kind: (key in its data, field named in the associated
    data) pairs, and for an amendment its note and the free text among its changes."""

    entity: str
    fields: tuple[tuple[str, str], ...] = ()
    amended: bool = False

    def most(self) -> int:
        """The most values one event of this kind seals."""
        return len(self.fields) + (1 + len(FIELDS[self.entity]) if self.amended else 0)


_EXIT: Final = tuple((f, f) for f in FIELDS["exit"])
SEALED: Final[dict[str, Plan]] = {
    "exit.recorded": Plan("exit", _EXIT),
    "exit.declared": Plan("exit", _EXIT),
    "exit.client_informed": Plan("exit", (("explanation", "explanation"),)),
    "exit.attendant_arranged": Plan("exit", (("client_attended_by", "client_attended_by"),)),
    "exit.ems_decided": Plan("exit", (("note", "ems_note"),)),
    "concern.recorded": Plan("concern", (("text", "text"),)),
    "concern.raised": Plan("concern", (("text", "text"),)),
    "session.amended": Plan("session", amended=True),
    "exit.amended": Plan("exit", amended=True),
    "concern.amended": Plan("concern", amended=True),
    "finding.acknowledged": Plan("finding", (("note", "acknowledged_note"),)),
    "finding.resolved": Plan("finding", (("note", "resolved_note"),)),
}
# The event kinds whose data holds no free text (a test checks SEALED and PLAIN cover KINDS).
PLAIN: Final = frozenset(
    {
        "practice.created",  # the practice's name and time zone: not health data
        "session.recorded",
        "session.started",
        "session.ended",
        "exit.safeguard_confirmed",
        "exit.returned",
        "exit.checked_in",
        "exit.signed",
        "concern.acknowledged",
        "finding.assigned",  # the finding's ids and the assignee's user id
        # An appointment's ids, modality, planned times and codes (no free text is imported).
        "appointment.scheduled",
        "appointment.rescheduled",
        "appointment.cancelled",
    }
)

Aead = AESGCM


class DecryptionError(ValueError):
    """A sealed field that cannot be opened: moved, altered, or its key unavailable. Names the
    record and the field, never the text."""

    def __init__(self, entity: str, record: str, field: str, reason: str) -> None:
        super().__init__(f"{entity} {record}: {field}: {reason}")
        self.entity = entity
        self.record = record
        self.field = field


def associated_data(practice: str, entity: str, record: str, field: str) -> bytes:
    return orjson.dumps([FORMAT, practice, entity, record, field])


_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")


def seal_text(aead: Aead, generation: int, ad: bytes, text: str, nonce: bytes | None = None) -> str:
    """`text` sealed; `nonce`, 12 random bytes never used before with this key, is drawn here
    when not given."""
    if nonce is None:
        nonce = os.urandom(NONCE_BYTES)
    body = binascii.b2a_base64(nonce + aead.encrypt(nonce, text.encode(), ad), newline=False)
    return f"{PREFIX}{generation}.{body.translate(_URLSAFE).decode('ascii')}"


def _nonces(count: int) -> Iterator[bytes]:
    """`count` random nonces from one call for random bytes (a call per nonce costs more
    than the encryption itself)."""
    pool = os.urandom(NONCE_BYTES * count)
    return (pool[i : i + NONCE_BYTES] for i in range(0, len(pool), NONCE_BYTES))


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def blank(value: str) -> bool:
    return not value.strip()


_caches: "weakref.WeakKeyDictionary[Engine, dict[tuple[str, int], Aead]]" = (
    weakref.WeakKeyDictionary()
)
_caches_lock = threading.Lock()


def _cache_of(engine: Engine) -> dict[tuple[str, int], Aead]:
    """The unwrapped data keys of one database, by (practice, generation), for this process.
    A data key never changes once committed (a rotation re-wraps the same key)."""
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = {}
        return cache


class FieldCrypt:
    """Seals events for the ledger and opens fields for `SqlRecords`, in one unit of work.

    `sync` waits for the unit of work's pending bulk writes before this reads or writes the
    `data_keys` table on the same connection."""

    def __init__(
        self, conn: Connection, keys: Keys, sync: Callable[[], None] | None = None
    ) -> None:
        self._conn = conn
        self._keys = keys
        self._sync = sync
        self._cache = _cache_of(conn.engine)
        self._writing: dict[str, tuple[int, Aead]] = {}  # practice -> key for new writes
        self._local: dict[tuple[str, int], Aead] = {}  # keys this transaction created
        self._created: set[str] = set()  # practices whose key this transaction created

    # -- The transaction's life.

    def end_transaction(self) -> None:
        """After a commit or a rollback: the next transaction reads the keys afresh."""
        self._writing.clear()
        self._local.clear()
        self._created.clear()

    def savepoint_rolled_back(self) -> None:
        """A data key created inside the savepoint is gone; one created before it is still
        uncommitted (`_created` stays, so that it is not cached for the process yet)."""
        self._writing.clear()
        self._local.clear()

    # -- Sealing.

    def seal_events(self, events: Sequence[Event], first_seq: int) -> list[Event]:
        """`events` (ledger entries `first_seq`, `first_seq + 1`, ...) with their free text
        sealed."""
        plans = SEALED
        sealing = [
            (i, e, plan) for i, e in enumerate(events) if (plan := plans.get(e.kind)) is not None
        ]
        if not sealing:
            return list(events)
        missing = {e.practice for _, e, _ in sealing} - self._writing.keys()
        if missing:
            self._load_writing(missing)
        nonces = _nonces(sum(plan.most() for *_, plan in sealing))
        out = list(events)
        for i, e, plan in sealing:
            out[i] = self._seal_event(e, first_seq + i, plan, nonces)
        return out

    def _seal_event(self, e: Event, seq: int, plan: Plan, nonces: Iterator[bytes]) -> Event:
        generation, aead = self._writing[e.practice]
        entity, amended = plan.entity, plan.amended
        data = dict(e.data)
        for key, field in plan.fields:
            value = data.get(key)
            if type(value) is str and not blank(value):
                ad = associated_data(e.practice, entity, e.subject, field)
                data[key] = seal_text(aead, generation, ad, value, next(nonces))
        if amended:
            note = data.get("note")
            if type(note) is str and not blank(note):
                ad = associated_data(e.practice, "amendment", str(seq), "note")
                data["note"] = seal_text(aead, generation, ad, note, next(nonces))
            changes = data.get("changes")
            if isinstance(changes, dict):
                sealed = dict(changes)
                for field in FIELDS.get(entity, ()):
                    value = sealed.get(field)
                    if type(value) is str and not blank(value):
                        ad = associated_data(e.practice, entity, e.subject, field)
                        sealed[field] = seal_text(aead, generation, ad, value, next(nonces))
                data["changes"] = sealed
        return e._replace(data=data)

    def _load_writing(self, practices: Iterable[str]) -> None:
        """The data key new writes use, for each of `practices`: its highest generation,
        created (generation 1) where a practice has none yet."""
        if self._sync is not None:
            self._sync()
        conn, keys = self._conn, self._keys
        found = datakeys.latest(conn, practices)
        for practice in sorted(set(practices) - found.keys()):
            stored, created = datakeys.create(conn, keys, practice, 1)
            if created:
                self._created.add(practice)
            found[practice] = stored
        for practice, key in found.items():
            self._writing[practice] = (key.generation, self._remember(key))

    # -- Opening.

    def open(
        self, practice: str, entity: str, record: str, field: str, value: str | None
    ) -> str | None:
        """The plain text of a sealed field of `record` (None and blank text as they are)."""
        if value is None:
            return None
        if not value.startswith(PREFIX):
            if blank(value):
                return value
            raise DecryptionError(entity, record, field, "holds text that is not encrypted")
        try:
            generation_text, body = value[len(PREFIX) :].split(".", 1)
            generation = int(generation_text)
            raw = base64.urlsafe_b64decode(body)
        except ValueError:
            raise DecryptionError(entity, record, field, "is not a valid encrypted value") from None
        aead = self._key(practice, generation, entity, record, field)
        ad = associated_data(practice, entity, record, field)
        try:
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], ad).decode()
        except InvalidTag:
            raise DecryptionError(
                entity,
                record,
                field,
                "does not decrypt with its practice's data key: it was altered, or moved "
                "from another record, field or practice",
            ) from None

    def _key(self, practice: str, generation: int, entity: str, record: str, field: str) -> Aead:
        found = self._local.get((practice, generation)) or self._cache.get((practice, generation))
        if found is not None:
            return found
        if self._sync is not None:
            self._sync()
        stored = datakeys.find(self._conn, practice, generation)
        if stored is None:
            reason = f"its data key (practice {practice}, generation {generation}) is not stored"
            raise DecryptionError(entity, record, field, reason)
        try:
            return self._remember(stored)
        except datakeys.DataKeyError as e:
            raise DecryptionError(entity, record, field, f"cannot be read: {e}") from None

    def _remember(self, key: datakeys.WrappedKey) -> Aead:
        """The unwrapped key, cached for the process once it is known to be committed."""
        index = (key.practice, key.generation)
        aead = self._local.get(index) or self._cache.get(index)
        if aead is None:
            aead = AESGCM(datakeys.unwrap(self._keys, key))
            if key.practice in self._created:
                self._local[index] = aead
            else:
                self._cache[index] = aead
        return aead
