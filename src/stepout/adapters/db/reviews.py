"""Finding reviews on SQL: the `finding_reviews` projection and its reads.

The projection folds `finding.*` events (`stepout.domain.reviews.evolve_review`) into one row
per finding key; live appends and `stepout rebuild` run the same code (the `Projector` hands
these events here). The notes stay as the ledger holds them, sealed; `SqlReviews` opens them
with the practice's data key (entity `finding`, id: the key).
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from sqlalchemy import Connection, select

from stepout.adapters.db.bulk import insert_rows, update_rows
from stepout.adapters.db.fieldcrypt import FieldCrypt
from stepout.adapters.db.tables import FindingReviewRow
from stepout.domain.events import Event
from stepout.domain.reviews import Review, evolve_review

T: Final = FindingReviewRow.__table__.c
COLUMNS: Final = (
    "key", "practice", "rule", "session", "exit", "therapist", "state", "assignee",
    "assigned_by", "assigned_us", "acknowledged_by", "acknowledged_us", "acknowledged_note",
    "resolved_by", "resolved_us", "resolved_note", "last_seq",
)  # fmt: skip
BATCH: Final = 500


def _review_of(row: Sequence[Any]) -> Review:
    return Review(
        key=row[0],
        practice=row[1],
        rule=row[2],
        session=row[3],
        exit=row[4],
        therapist=row[5],
        state=row[6],
        assignee=row[7],
        assigned_by=row[8],
        assigned_at=row[9],
        acknowledged_by=row[10],
        acknowledged_at=row[11],
        acknowledged_note=row[12],
        resolved_by=row[13],
        resolved_at=row[14],
        resolved_note=row[15],
    )


def _row_of(r: Review, seq: int) -> tuple[Any, ...]:
    return (
        r.key, r.practice, r.rule, r.session, r.exit, r.therapist, r.state, r.assignee,
        r.assigned_by, r.assigned_at, r.acknowledged_by, r.acknowledged_at, r.acknowledged_note,
        r.resolved_by, r.resolved_at, r.resolved_note, seq,
    )  # fmt: skip


def _stored(conn: Connection, keys: Iterable[str]) -> dict[str, Review]:
    wanted = sorted(set(keys))
    found: dict[str, Review] = {}
    columns = [T[c] for c in COLUMNS]
    for i in range(0, len(wanted), BATCH):
        for row in conn.execute(select(*columns).where(T.key.in_(wanted[i : i + BATCH]))):
            found[row[0]] = _review_of(row)
    return found


def project(conn: Connection, events: Sequence[Event], seqs: Sequence[int]) -> None:
    """Fold review events (ledger entries `seqs`, in order) into `finding_reviews`."""
    if not events:
        return
    before = _stored(conn, (e.subject for e in events))
    current: dict[str, tuple[Review, int]] = {}
    for e, seq in zip(events, seqs, strict=True):
        known = current.get(e.subject)
        review = evolve_review(known[0] if known else before.get(e.subject), e)
        current[e.subject] = (review, seq)
    new = [_row_of(r, seq) for key, (r, seq) in current.items() if key not in before]
    changed = [(*_row_of(r, seq)[1:], key) for key, (r, seq) in current.items() if key in before]
    insert_rows(conn, "finding_reviews", COLUMNS, new)
    update_rows(conn, "finding_reviews", COLUMNS[1:], "key", changed)


class SqlReviews:
    """Reads reviews of one practice, notes opened. `settle` waits for pending writes."""

    def __init__(
        self, conn: Connection, crypt: FieldCrypt, settle: Callable[[], None] | None = None
    ) -> None:
        self._conn = conn
        self._crypt = crypt
        self._settle = settle

    def _open(self, r: Review) -> Review:
        from dataclasses import replace

        crypt = self._crypt
        return replace(
            r,
            acknowledged_note=crypt.open(
                r.practice, "finding", r.key, "acknowledged_note", r.acknowledged_note
            ),
            resolved_note=crypt.open(
                r.practice, "finding", r.key, "resolved_note", r.resolved_note
            ),
        )

    def reviews(self, practice: str, keys: Iterable[str]) -> dict[str, Review]:
        if self._settle is not None:
            self._settle()
        found = _stored(self._conn, keys)
        return {k: self._open(r) for k, r in found.items() if r.practice == practice}

    def review(self, practice: str, key: str) -> Review | None:
        return self.reviews(practice, (key,)).get(key)

    def assigned_to(self, practice: str, assignee: str) -> list[Review]:
        if self._settle is not None:
            self._settle()
        query = (
            select(*(T[c] for c in COLUMNS))
            .where(T.practice == practice, T.assignee == assignee)
            .order_by(T.key)
        )
        return [self._open(_review_of(row)) for row in self._conn.execute(query)]
