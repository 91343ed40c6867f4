"""Projection rows <-> domain records, with as little work per row as possible.

The column lists put each record's fields in its constructor's order, so that a row becomes a
record with one positional call. The JSON lists (billed codes, safeguards) repeat a handful of
values across millions of rows, so their decoded forms are cached.

Free-text columns hold ciphertext (`fieldcrypt`). `exit_of` and `concern_of` keep it (the
projection folds sealed records); `open_exit` and `open_concern` open it with a `reveal`
function, for the records the rest of Stepout reads.
"""

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, Final

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Select,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.sql.elements import KeyedColumnElement

from stepout.adapters.db.tables import ConcernRow, ExitRow, PracticeRow, SessionRow
from stepout.domain.practice import Practice
from stepout.domain.records import Concern, Exit, Session

S: Final = SessionRow.__table__.c
X: Final = ExitRow.__table__.c
C: Final = ConcernRow.__table__.c
P: Final = PracticeRow.__table__.c

IN_CHUNK: Final = 5_000  # ids per lookup query
STREAM_CHUNK: Final = 2000  # rows fetched per round trip when streaming

# Session(id, practice, therapist, client, room, modality, start, end, billed_codes) after pk.
SESSION_COLUMNS: Final[tuple[KeyedColumnElement[Any], ...]] = (
    S.pk, S.id, S.practice, S.therapist, S.client, S.room, S.modality,
    S.start_us, S.end_us, S.billed_codes,
)  # fmt: skip
# Exit(id, session, source, left_at, reason, reason_note, returned_at, client_informed,
#      explanation, safeguards, client_attended_by, ems, checked_in, signed_at,
#      expected_minutes) after pk; the session id comes from the joined session; then the
#      practice, whose data key sealed the free text.
EXIT_COLUMNS: Final[tuple[KeyedColumnElement[Any], ...]] = (
    X.pk, X.id, S.id, X.source, X.left_us, X.reason, X.reason_note, X.returned_us,
    X.client_informed, X.explanation, X.safeguards, X.client_attended_by, X.ems,
    X.checked_in, X.signed_us, X.expected_minutes, X.practice,
)  # fmt: skip
CONCERN_COLUMNS: Final[tuple[KeyedColumnElement[Any], ...]] = (
    C.pk, C.id, S.id, C.raised_us, C.text, C.acknowledged_us, C.practice,
)  # fmt: skip


@lru_cache(maxsize=4096)
def codes_of(text: str) -> tuple[str, ...]:
    return tuple(orjson.loads(text))


@lru_cache(maxsize=4096)
def codes_text(codes: tuple[str, ...]) -> str:
    return orjson.dumps(codes).decode()


@lru_cache(maxsize=256)
def safeguards_of(text: str) -> frozenset[str]:
    return frozenset(orjson.loads(text))


@lru_cache(maxsize=256)
def safeguards_text(safeguards: frozenset[str]) -> str:
    return orjson.dumps(sorted(safeguards)).decode()


def session_of(r: Sequence[Any]) -> Session:
    return Session(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], codes_of(r[9]))


def exit_of(r: Sequence[Any]) -> Exit:
    return Exit(
        r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
        safeguards_of(r[10]), r[11], r[12], bool(r[13]), r[14], r[15],
    )  # fmt: skip


def concern_of(r: Sequence[Any]) -> Concern:
    return Concern(r[1], r[2], r[3], r[4], r[5])


# reveal(practice, entity, id, field, sealed value) -> the plain text (FieldCrypt.open)
Reveal = Callable[[str, str, str, str, str | None], str | None]


def open_exit(r: Sequence[Any], reveal: Reveal) -> Exit:
    """`exit_of`, its free text opened."""
    practice, id_ = r[16], r[1]
    return Exit(
        id_, r[2], r[3], r[4], r[5], reveal(practice, "exit", id_, "reason_note", r[6]),
        r[7], r[8], reveal(practice, "exit", id_, "explanation", r[9]), safeguards_of(r[10]),
        reveal(practice, "exit", id_, "client_attended_by", r[11]), r[12], bool(r[13]),
        r[14], r[15],
    )  # fmt: skip


def open_concern(r: Sequence[Any], reveal: Reveal) -> Concern:
    """`concern_of`, its text opened."""
    text = reveal(r[6], "concern", r[1], "text", r[4])
    assert text is not None  # a concern's text is required
    return Concern(r[1], r[2], r[3], text, r[5])


def practice_of(r: Sequence[Any]) -> Practice:
    return Practice(r[0], r[1], r[2])


Lookup = Callable[[Callable[[KeyedColumnElement[Any]], ColumnElement[bool]]], Select[Any]]


class ById:
    """A query for the rows whose `column` is any of many ids, with one parameter: a JSON
    array through `json_each` on SQLite, an array with `= ANY` on PostgreSQL (no long IN
    lists to compile, and no limit on their length)."""

    def __init__(self, build: Lookup) -> None:
        sqlite_ids: Select[Any] = select(literal_column("value")).select_from(
            func.json_each(bindparam("ids", type_=String))
        )
        pg_ids = any_(bindparam("ids", type_=ARRAY(String)))
        self._stmts = {
            "sqlite": build(lambda column: column.in_(sqlite_ids.scalar_subquery())),
            "postgresql": build(lambda column: column == pg_ids),
        }

    def rows(self, conn: Connection, ids: list[str]) -> Any:
        if conn.dialect.name == "postgresql":
            return conn.execute(self._stmts["postgresql"], {"ids": ids})
        return conn.execute(self._stmts["sqlite"], {"ids": orjson.dumps(ids).decode()})


SESSIONS_BY_ID: Final = ById(lambda match: select(*SESSION_COLUMNS).where(match(S.id)))
EXITS_BY_ID: Final = ById(
    lambda match: (
        select(*EXIT_COLUMNS)
        .join_from(ExitRow, SessionRow, X.session_pk == S.pk)
        .where(match(X.id))
    )
)
CONCERNS_BY_ID: Final = ById(
    lambda match: (
        select(*CONCERN_COLUMNS)
        .join_from(ConcernRow, SessionRow, C.session_pk == S.pk)
        .where(match(C.id))
    )
)
SESSION_REFS_BY_ID: Final = ById(
    lambda match: select(S.id, S.pk, S.practice, S.therapist).where(match(S.id))
)
PRACTICES_BY_ID: Final = ById(lambda match: select(P.id, P.name, P.timezone).where(match(P.id)))


def rows_by_id(conn: Connection, lookup: ById, ids: Iterable[str]) -> Iterator[Any]:
    """The rows of `lookup` for `ids` (any number, repeats ignored), a chunk at a time."""
    wanted = list(dict.fromkeys(ids))
    for i in range(0, len(wanted), IN_CHUNK):
        yield from lookup.rows(conn, wanted[i : i + IN_CHUNK])


def stream(conn: Connection, stmt: Select[Any]) -> Iterator[Any]:
    """Rows of `stmt` as plain tuples, fetched a chunk at a time straight from the driver
    (a server-side cursor on PostgreSQL), inside the connection's transaction."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    driver = conn.connection.driver_connection
    assert driver is not None
    params: Any
    if conn.dialect.name == "postgresql":
        cursor = driver.cursor(name=f"stepout_stream_{next(_cursor_names)}")
        cursor.itersize = STREAM_CHUNK
        params = compiled.params
    else:
        cursor = driver.cursor()
        params = [compiled.params[name] for name in compiled.positiontup or ()]
    try:
        cursor.execute(str(compiled), params)
        while rows := cursor.fetchmany(STREAM_CHUNK):
            yield from rows
    finally:
        cursor.close()


_cursor_names = itertools.count(1)
