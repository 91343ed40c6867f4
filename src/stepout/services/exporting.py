"""Export every stored record as JSON Lines (DESIGN.md, "Records interchange").

Each ended session is followed by its exits and concerns, every field present, timestamps in
UTC. Importing the output into an empty store gives the same records.
"""

from collections.abc import Callable
from typing import Any, BinaryIO, Final

import orjson

from stepout.domain.interchange import concern_to_dict, exit_to_dict, session_to_dict
from stepout.domain.records import Concern, Exit, Session
from stepout.services.ports import Records

BATCH: Final = 1_000  # lines per write

_TO_DICT: Final[dict[type, Callable[[Any], dict[str, Any]]]] = {
    Session: session_to_dict,
    Exit: exit_to_dict,
    Concern: concern_to_dict,
}


def export_records(records: Records, out: BinaryIO) -> int:
    """Write `records.dump()` to `out`, one record per line, leaving out sessions still in
    progress; return how many were written."""
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    batch: list[bytes] = []
    count = 0
    in_progress = False
    for record in records.dump():
        if isinstance(record, Session):
            # A session in progress has no `end` yet, so it is not a valid record to exchange;
            # it and what hangs on it wait for the next export.
            in_progress = record.end is None
        if in_progress:
            continue
        batch.append(dumps(_TO_DICT[type(record)](record), option=newline))
        if len(batch) >= BATCH:
            out.write(b"".join(batch))
            count += len(batch)
            batch.clear()
    if batch:
        out.write(b"".join(batch))
        count += len(batch)
    return count
