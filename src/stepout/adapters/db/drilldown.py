"""The sessions behind a bar that `SqlDashboard.sessions_of` does not narrow to: those with
an exit (a therapist's bar of the share chart) and those with a stored finding (the findings
chart, `findings_store.FindingsStore.sessions_of`). Each listed session's figures are the
domain's (`stepout.domain.billing.reconcile`), at most a page of them."""

from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from stepout.adapters.db.rows import S, X
from stepout.adapters.db.tables import ExitRow, SessionRow
from stepout.domain.billing import reconcile
from stepout.domain.instants import day_bounds
from stepout.services.dashboard import UNCLASSIFIED, DashboardFilter, SessionLine
from stepout.services.ports import Records


def sessions_with_exits(conn: Connection, f: DashboardFilter, zone: str, limit: int) -> list[str]:
    """Ended sessions of the filter with at least one exit (of the filter's reason, if any),
    by start then id."""
    lo = day_bounds(f.date_from, zone)[0]
    hi = day_bounds(f.date_to, zone)[1]
    where = [
        S.practice == f.practice,
        S.start_us >= lo,
        S.start_us < hi,
        S.end_us.is_not(None),
        X.practice == f.practice,
    ]
    if f.therapist is not None:
        where.append(S.therapist == f.therapist)
    if f.room is not None:
        where.append(S.room == f.room)
    if f.reason == UNCLASSIFIED:
        where.append(X.reason.is_(None))
    elif f.reason is not None:
        where.append(X.reason == f.reason)
    rows = conn.execute(
        select(S.id, func.min(S.start_us))
        .join_from(SessionRow, ExitRow, X.session_pk == S.pk)
        .where(*where)
        .group_by(S.id)
        .order_by(func.min(S.start_us), S.id)
        .limit(limit)
    ).all()
    return [str(r[0]) for r in rows]


def session_lines(records: Records, ids: Sequence[str]) -> list[SessionLine]:
    """The drill-down's rows of these sessions (ended ones only), in the order given."""
    sessions = records.sessions(ids)
    lines = []
    for sid in ids:
        s = sessions.get(sid)
        if s is None or s.end is None:
            continue
        exits = records.exits_of_session(sid)
        line = reconcile(s, exits)
        lines.append(
            SessionLine(
                s.id, s.therapist, s.room, s.start, s.end, len(exits), line.net_minutes,
                line.status,
            )
        )  # fmt: skip
    return lines
