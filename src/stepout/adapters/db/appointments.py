"""Appointments on SQL: the `appointments` projection and its reads.

The projection folds `appointment.*` events (`stepout.domain.schedule.evolve_appointment`)
into one row per appointment id; live appends and `stepout rebuild` run the same code (the
`Projector` hands these events here). Appointments hold no free text: nothing is sealed.
"""

from collections.abc import Iterable, Sequence
from typing import Any, Final

import orjson
from sqlalchemy import Connection, and_, select

from stepout.adapters.db.bulk import Writer, insert_rows, update_rows
from stepout.adapters.db.rows import ById, rows_by_id
from stepout.adapters.db.tables import AppointmentRow, SessionRow
from stepout.domain.events import Event, EvolveError
from stepout.domain.instants import Instant
from stepout.domain.schedule import Appointment, AppointmentError, evolve_appointment

A: Final = AppointmentRow.__table__.c
S: Final = SessionRow.__table__.c
COLUMNS: Final = (
    "id", "practice", "therapist", "client", "room", "modality", "start_us", "end_us",
    "billed_codes", "status", "last_seq",
)  # fmt: skip


def _appointment_of(row: Sequence[Any]) -> Appointment:
    return Appointment(
        id=row[0],
        practice=row[1],
        therapist=row[2],
        client=row[3],
        room=row[4],
        modality=row[5],
        start=row[6],
        end=row[7],
        billed_codes=tuple(orjson.loads(row[8])),
        status=row[9],
    )


def _row_of(a: Appointment, seq: int) -> tuple[Any, ...]:
    codes = orjson.dumps(list(a.billed_codes)).decode()
    return (
        a.id, a.practice, a.therapist, a.client, a.room, a.modality, a.start, a.end, codes,
        a.status, seq,
    )  # fmt: skip


APPOINTMENTS_BY_ID: Final = ById(
    lambda match: select(*(A[c] for c in COLUMNS[:-1])).where(match(A.id))
)


def stored(conn: Connection, ids: Iterable[str]) -> dict[str, Appointment]:
    """The stored appointments among `ids` (the connection's tenant wall applies)."""
    return {row[0]: _appointment_of(row) for row in rows_by_id(conn, APPOINTMENTS_BY_ID, ids)}


def project(
    conn: Connection, events: Sequence[Event], seqs: Sequence[int], writer: Writer | None = None
) -> None:
    """Fold appointment events (ledger entries `seqs`, in order) into `appointments`; new
    rows go through `writer` when given (a bulk append), updates run here."""
    if not events:
        return
    wanted = {e.subject for e in events if e.kind != "appointment.scheduled"}
    before = stored(conn, wanted) if wanted else {}
    current: dict[str, tuple[Appointment, int]] = {}
    for e, seq in zip(events, seqs, strict=True):
        known = current.get(e.subject)
        previous = known[0] if known else before.get(e.subject)
        try:
            current[e.subject] = (evolve_appointment(previous, e.kind, e.subject, e.data), seq)
        except AppointmentError as error:
            raise EvolveError(str(error)) from None
    new = [_row_of(a, seq) for key, (a, seq) in current.items() if key not in before]
    changed = [(*_row_of(a, seq)[1:], key) for key, (a, seq) in current.items() if key in before]
    insert_rows(conn, "appointments", COLUMNS, new, writer)
    update_rows(conn, "appointments", COLUMNS[1:], "id", changed)


def of_therapist(
    conn: Connection, practice: str, therapist: str, start_from: Instant, start_before: Instant
) -> list[tuple[Appointment, bool]]:
    """The therapist's appointments planned to start in [start_from, start_before), by start,
    each with whether it has started (a session with its id exists)."""
    query = (
        select(*(A[c] for c in COLUMNS[:-1]), S.pk)
        .outerjoin(SessionRow, and_(S.id == A.id, S.practice == A.practice))
        .where(
            A.practice == practice,
            A.therapist == therapist,
            A.start_us >= start_from,
            A.start_us < start_before,
        )
        .order_by(A.start_us, A.id)
    )
    return [(_appointment_of(row), row[-1] is not None) for row in conn.execute(query)]
