"""What needs a supervisor now, for the top of the dashboard: the practice's open client
concerns (how many, since when, how many past the policy's time limit), in one aggregate."""

from dataclasses import dataclass

from sqlalchemy import Connection, case, func, select

from stepout.adapters.db.tables import ConcernRow
from stepout.domain.instants import Instant

C = ConcernRow.__table__.c


@dataclass(frozen=True, slots=True)
class OpenConcerns:
    count: int
    oldest: Instant | None  # when the oldest open concern was raised
    overdue: int  # raised before the time limit's start: past `concern-unacknowledged`'s


def open_concerns(conn: Connection, practice: str, raised_before: Instant | None) -> OpenConcerns:
    """Concerns of `practice` not acknowledged; `overdue`: those raised before
    `raised_before` (None: the rule is off, none is overdue)."""
    late = (
        func.sum(case((C.raised_us < raised_before, 1), else_=0))
        if raised_before is not None
        else func.sum(0)
    )
    count, oldest, overdue = conn.execute(
        select(func.count(), func.min(C.raised_us), late).where(
            C.practice == practice, C.acknowledged_us.is_(None)
        )
    ).one()
    return OpenConcerns(int(count), oldest, int(overdue or 0))
