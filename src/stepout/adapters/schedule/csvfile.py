"""Schedules as CSV (docs/schedules.md): a header row naming the columns, one appointment per
row after it.

Columns: `id`, `practice` (optional when the import names the practice), `therapist`,
`client`, `room`, `modality`, `start`, `end` (ISO 8601 with an offset), and optionally
`billed_codes` (codes separated by spaces or `;`) and `status` (`scheduled`, the default, or
`cancelled`). The header must name every required column and no other; columns may come in
any order. Places are physical line numbers counted from 1 (the header is line 1); a row that
spans lines (a quoted line break) is placed at its first line.
"""

import csv
import io
import re
from collections.abc import Iterator
from typing import Any, Final

from stepout.domain.schedule import Raw, ScheduleError

REQUIRED: Final = ("id", "therapist", "client", "room", "modality", "start", "end")
OPTIONAL: Final = ("practice", "billed_codes", "status")
COLUMNS: Final = (*REQUIRED, *OPTIONAL)
STATUSES: Final = ("scheduled", "cancelled")
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_CODE_SPLIT: Final = re.compile(r"[\s;]+")


class CsvFileError(ValueError):
    """The file as a whole cannot be read (its header or its encoding)."""

    def __init__(self, errors: list[ScheduleError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def _line(n: int) -> str:
    return f"line {n}"


def read_csv(data: bytes, practice: str | None) -> Iterator[Raw]:
    """The appointments of a CSV schedule; `practice` fills an absent `practice` column.
    Raises `CsvFileError` when the header is wrong or the file is not UTF-8."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CsvFileError([ScheduleError(_line(line), "csv", "is not UTF-8 text")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header, header_line = _header(reader)
    positions = {name: i for i, name in enumerate(header)}
    width = len(header)
    take = [(name, positions[name]) for name in COLUMNS if name in positions]
    first = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield _broken(first, f"cannot be read as CSV ({e})")
            return
        line, first = first, reader.line_num + 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            message = f"has {len(row)} fields; the header (line {header_line}) has {width}"
            yield _broken(line, message)
            continue
        yield _raw(line, {name: row[i] for name, i in take}, practice)


def _header(reader: Any) -> tuple[list[str], int]:
    errors: list[ScheduleError] = []
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise CsvFileError([ScheduleError(_line(1), "csv", f"cannot be read ({e})")]) from None
    if header is None:
        raise CsvFileError([ScheduleError(_line(1), "csv", "is empty: a header row is required")])
    line = reader.line_num
    names = [h.strip() for h in header]
    seen: set[str] = set()
    for name in names:
        if name not in COLUMNS:
            shown = name if _SAFE_NAME.fullmatch(name) else "?"
            errors.append(ScheduleError(_line(line), shown, "is not a schedule column"))
        elif name in seen:
            errors.append(ScheduleError(_line(line), name, "is named twice"))
        seen.add(name)
    for name in REQUIRED:
        if name not in seen:
            errors.append(ScheduleError(_line(line), name, "column is missing"))
    if errors:
        raise CsvFileError(errors)
    return names, line


def _broken(line: int, message: str) -> Raw:
    error = ScheduleError(_line(line), "csv", message)
    return Raw(_line(line), (line, 0), {}, errors=(error,))


def _raw(line: int, cells: dict[str, str], practice: str | None) -> Raw:
    place = _line(line)
    errors: list[ScheduleError] = []
    status = cells.get("status", "").strip() or "scheduled"
    if status not in STATUSES:
        errors.append(ScheduleError(place, "status", "must be scheduled or cancelled"))
    codes_text = cells.get("billed_codes", "").strip()
    fields: dict[str, object] = {
        "id": cells["id"].strip(),
        "practice": cells.get("practice", "").strip() or practice,
        "therapist": cells["therapist"],
        "client": cells["client"],
        "room": cells["room"],
        "modality": cells["modality"].strip(),
        "start": cells["start"].strip(),
        "end": cells["end"].strip(),
        "billed_codes": _CODE_SPLIT.split(codes_text) if codes_text else [],
    }
    return Raw(place, (line, 0), fields, status == "cancelled", errors=tuple(errors))
