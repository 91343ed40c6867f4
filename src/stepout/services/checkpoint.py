"""Signed checkpoints of the two chains, and the check of a database against its chains and a
checkpoint.

A chain alone proves that no entry was changed, removed or reordered *before its last entry*;
entries cut from the end leave an intact, shorter chain, and someone holding the key file could
rewrite history and re-chain it. A checkpoint closes both gaps: it records, for the ledger and
the audit trail, how many entries there were and the hash of the last one, signed with the
installation's Ed25519 key (derived from the key file), and it is kept away from the database.
Later, `check` walks both chains from the first entry and compares them with the checkpoint:
each chain must still have at least the checkpoint's entries, and the entry at the checkpoint's
count must still have the checkpoint's hash.

The file is JSON; the signature covers the canonical bytes of every other field (keys sorted,
no whitespace, UTF-8), so reformatting the file does not matter and changing any value does:

    {"format": "stepout-checkpoint/1", "taken_at": "2026-11-29T10:00:00.123456+00:00",
     "database": "postgresql+psycopg://stepout@db.internal/stepout",
     "ledger": {"count": 1234, "head": "<hex>"}, "audit": {"count": 567, "head": "<hex>"},
     "public_key": "<hex of the raw Ed25519 public key>", "signature": "<hex>"}
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stepout.crypto.keys import Keys
from stepout.domain.chain import GENESIS, VerifyResult
from stepout.domain.instants import Instant, format_instant

FORMAT: Final = "stepout-checkpoint/1"
# The chains, by their key in the checkpoint file, with the name people read.
CHAINS: Final[Mapping[str, str]] = {"ledger": "ledger", "audit": "audit trail"}
HASH_LENGTH: Final = 64
PROJECTIONS: Final = "projections"  # the `chain` of a Problem in the query tables


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or a checkpoint that cannot be taken."""


class Chains(Protocol):
    """What the check needs of a database (`stepout.adapters.db.Database` has it)."""

    def verify_chains(self) -> Mapping[str, VerifyResult]:
        """Each chain (keyed as in CHAINS) walked from its first entry, in one snapshot."""
        ...

    def chain_hash_at(self, chain: str, seq: int) -> str | None:
        """The stored hash of entry `seq` of `chain`, None if there is no such entry."""
        ...

    def projection_counts(self) -> Mapping[str, tuple[int, int]]:
        """Per query table: (its rows, how many the ledger's entries make)."""
        ...

    def derived_problems(self) -> Sequence[str]:
        """What is wrong with the tables summed from the projections (the dashboard's rollup),
        one line each; none when they agree."""
        ...


@dataclass(frozen=True, slots=True)
class Mark:
    """A chain's length and the hash of its last entry (GENESIS when empty)."""

    count: int
    head: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    taken_at: str  # ISO 8601, UTC
    database: str  # the URL it was taken from, without a password
    marks: Mapping[str, Mark]  # keyed as in CHAINS
    public_key: str  # hex of the raw Ed25519 public key that signed it
    signature: str = ""  # hex

    def body(self) -> dict[str, Any]:
        """Every field but the signature."""
        body: dict[str, Any] = {
            "format": FORMAT,
            "taken_at": self.taken_at,
            "database": self.database,
            "public_key": self.public_key,
        }
        for name, mark in self.marks.items():
            body[name] = {"count": mark.count, "head": mark.head}
        return body

    def signed_bytes(self) -> bytes:
        """The bytes the signature covers: the body's canonical JSON."""
        return orjson.dumps(self.body(), option=orjson.OPT_SORT_KEYS)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {**self.body(), "signature": self.signature},
            option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
        )


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: a chain's first break (`broken`), a chain that no longer holds the
    checkpoint (`chain` as in CHAINS, `entry` its seq), or, with `chain` None, the checkpoint
    itself."""

    chain: str | None
    entry: int | None
    message: str
    broken: bool = False

    def __str__(self) -> str:
        if self.chain is None:
            return f"checkpoint: {self.message}"
        if self.chain == PROJECTIONS:
            return f"query tables: {self.message}"
        name = CHAINS.get(self.chain, self.chain)
        if self.broken:
            return f"{name} broken at entry {self.entry}: {self.message}"
        return f"{name}, entry {self.entry}: {self.message}"


@dataclass(frozen=True, slots=True)
class Report:
    """What `check` found: each chain's walk, and every problem (none when all holds)."""

    results: Mapping[str, VerifyResult]
    checkpoint: Checkpoint | None = None
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


WRONG_KEY_HINT: Final = " (or the key file is not this database's)"


def chain_problems(results: Mapping[str, VerifyResult]) -> list[Problem]:
    """The first break of each chain. A first entry whose hash does not match may also mean
    another installation's key file: the message says so."""
    problems = []
    for name, result in results.items():
        if result.ok:
            continue
        reason = result.reason or "does not verify"
        if result.first_broken == 1 and reason.startswith("hash does not match"):
            reason += WRONG_KEY_HINT
        problems.append(Problem(name, result.first_broken, reason, broken=True))
    return problems


def take(chains: Chains, keys: Keys, database: str, at: Instant) -> Checkpoint:
    """Walk both chains and sign their lengths and heads. A broken chain is not vouched for:
    `CheckpointError` names its break."""
    results = chains.verify_chains()
    problems = chain_problems(results)
    if problems:
        raise CheckpointError("no checkpoint taken: " + "; ".join(str(p) for p in problems))
    unsigned = Checkpoint(
        taken_at=format_instant(at),
        database=database,
        marks={name: Mark(results[name].checked, results[name].head) for name in CHAINS},
        public_key=public_key_hex(keys.public_key),
    )
    signature = keys.sign(unsigned.signed_bytes()).hex()
    return Checkpoint(
        unsigned.taken_at, unsigned.database, unsigned.marks, unsigned.public_key, signature
    )


def parse(raw: bytes) -> Checkpoint:
    """A checkpoint from its file's bytes; `CheckpointError` says what is malformed."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CheckpointError("not JSON: not a Stepout checkpoint file") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"not a Stepout checkpoint file (format {FORMAT})")
    expected = {"format", "taken_at", "database", "public_key", "signature", *CHAINS}
    if set(doc) != expected:
        raise CheckpointError(f"fields {sorted(set(doc) ^ expected)} are unexpected or missing")
    for name in ("taken_at", "database", "public_key", "signature"):
        if not isinstance(doc[name], str):
            raise CheckpointError(f"{name}: expected a string")
    marks = {name: _mark(name, doc[name]) for name in CHAINS}
    return Checkpoint(doc["taken_at"], doc["database"], marks, doc["public_key"], doc["signature"])


def _mark(name: str, value: object) -> Mark:
    if not isinstance(value, dict) or set(value) != {"count", "head"}:
        raise CheckpointError(f"{name}: expected {{count, head}}")
    count, head = value["count"], value["head"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise CheckpointError(f"{name}.count: expected a whole number ≥ 0")
    if not isinstance(head, str) or len(head) != HASH_LENGTH:
        raise CheckpointError(f"{name}.head: expected {HASH_LENGTH} hex digits")
    return Mark(count, head)


def signature_problem(checkpoint: Checkpoint, keys: Keys) -> Problem | None:
    """Whether this installation's key signed exactly this checkpoint."""
    ours = public_key_hex(keys.public_key)
    if checkpoint.public_key != ours:
        return Problem(
            None,
            None,
            "signed with another key than this installation's: it was taken from another "
            "installation (or with another key file), so it says nothing about this database",
        )
    try:
        keys.public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        return Problem(None, None, "the signature does not match its content: the file was altered")
    return None


def mark_problem(
    chains: Chains, name: str, mark: Mark, result: VerifyResult, taken_at: str
) -> Problem | None:
    """Whether chain `name` still holds the checkpoint's `mark`. A break at or before the
    mark is already reported by the walk (`chain_problems`)."""
    if not result.ok and (result.first_broken or 0) <= mark.count:
        return None
    if result.checked < mark.count:
        gone = (
            f"entry {mark.count} is"
            if result.checked + 1 == mark.count
            else f"entries {result.checked + 1} to {mark.count} are"
        )
        return Problem(
            name,
            result.checked + 1,
            f"{gone} missing: the chain has {result.checked:,} entries, the checkpoint of "
            f"{taken_at} counted {mark.count:,} (entries were cut from the end)",
        )
    stored = GENESIS if mark.count == 0 else chains.chain_hash_at(name, mark.count)
    if stored != mark.head:
        return Problem(
            name,
            mark.count,
            f"its hash is not the one the checkpoint of {taken_at} recorded: the chain was "
            "rewritten up to here since",
        )
    return None


# Tables derived from the ledger that are not one row per entry, with what puts them right.
# `projection_counts` reports them beside the projections: (rows, rows they should have).
# The dashboard's rollup is checked apart, by replaying its sums (`Chains.derived_problems`).
DERIVED: Final[Mapping[str, str]] = {
    "findings": "the stored findings disagree with their audit runs (stepout audit "
    "recomputes them)",
}


def projection_problems(counts: Mapping[str, tuple[int, int]]) -> list[Problem]:
    problems = []
    for table, (rows, made) in counts.items():
        if rows == made:
            continue
        if table in DERIVED:
            message = f"the {table} table has {rows:,} rows where {made:,} are expected: "
            problems.append(Problem(PROJECTIONS, None, message + DERIVED[table]))
            continue
        problems.append(
            Problem(
                PROJECTIONS,
                None,
                f"the {table} table has {rows:,} rows where the ledger makes {made:,}: it was "
                "changed outside Stepout (stepout rebuild rebuilds it from the ledger)",
            )
        )
    return problems


def check(
    chains: Chains,
    keys: Keys,
    checkpoint: Checkpoint | None = None,
    *,
    projections: bool = True,
) -> Report:
    """Walk both chains from the first entry and, with a checkpoint, check its signature and
    that both chains still hold what it recorded. With `projections`, also compare the query
    tables' row counts with the ledger (a cheap check, not a replay)."""
    results = chains.verify_chains()
    problems = chain_problems(results)
    if projections:
        problems += projection_problems(chains.projection_counts())
        problems += [
            Problem(PROJECTIONS, None, f"{found} (stepout rebuild rebuilds it)")
            for found in chains.derived_problems()
        ]
    if checkpoint is not None:
        bad_signature = signature_problem(checkpoint, keys)
        if bad_signature is not None:
            problems.append(bad_signature)
        else:
            for name, mark in checkpoint.marks.items():
                problem = mark_problem(chains, name, mark, results[name], checkpoint.taken_at)
                if problem is not None:
                    problems.append(problem)
    return Report(results, checkpoint, tuple(problems))
