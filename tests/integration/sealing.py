"""Free text written through the import and the live workflow, for the encryption tests.

Every text is a synthetic canary, unmistakably fake ("FAKE-CANARY-0007-…"), unique to the
run, so that a test can look for each one in raw bytes. `write_texts` says where each went:
(entity, record id, field), as the records read back through `uow.records` should show it.
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import orjson

from stepout.adapters.db import Database
from stepout.domain.commands import (
    Amend,
    DeclareExit,
    EndSession,
    RaiseConcern,
    Return,
    StartSession,
)
from stepout.domain.instants import MICROS_PER_MINUTE, format_instant, parse_instant
from stepout.services.importing import import_records
from stepout.services.workflow import Workflow

START: Final = parse_instant("2026-05-04T09:00:00+00:00")
IMPORT_EXIT_FIELDS: Final = ("reason_note", "explanation", "client_attended_by")
LIVE_TEXTS: Final = 7  # per live session: 4 at the tap, a concern, an amendment's text and note


def canaries(n: int) -> list[str]:
    run = secrets.token_hex(4)
    return [f"FAKE-CANARY-{i:04d}-{run}-not-health-data" for i in range(n)]


@dataclass
class Written:
    practice: str
    # (entity, id, field) -> text, for what the records show (an amendment's note is only in
    # the ledger and the amendments table)
    fields: dict[tuple[str, str, str], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # amendment and EMS notes

    def texts(self) -> list[str]:
        return [*self.fields.values(), *self.notes]


class Clock:
    def __init__(self, start: int) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += int(minutes * MICROS_PER_MINUTE)


def write_texts(db: Database, texts: list[str], *, practice: str = "p-canary") -> Written:
    """Store every one of `texts`: about 70 % through an import (exits' three free-text
    fields, concerns' text), the rest through the live workflow (an exit declared with all its
    words and an EMS note, a concern, an amendment of the explanation with a note)."""
    live = len(texts) * 3 // 10 // LIVE_TEXTS
    imported, rest = texts[: len(texts) - live * LIVE_TEXTS], iter(texts[-live * LIVE_TEXTS :])
    written = Written(practice)
    _import(db, imported, written)
    _live(db, live, rest, written)
    return written


def _import(db: Database, texts: list[str], written: Written) -> None:
    lines: list[bytes] = []
    words = iter(texts)
    i = 0
    while True:
        chunk = [t for t in (next(words, None) for _ in range(4)) if t is not None]
        if not chunk:
            break
        sid, start = f"s-{written.practice}-{i:04d}", START + i * 60 * MICROS_PER_MINUTE
        lines.append(_line(_session(sid, written.practice, start)))
        exit_texts, concern_text = chunk[:3], chunk[3] if len(chunk) == 4 else None
        xid = f"e-{written.practice}-{i:04d}"
        exit_: dict[str, object] = {
            "kind": "exit",
            "id": xid,
            "session": sid,
            "source": "declared",
            "reason": "other",
            "left_at": format_instant(start + 10 * MICROS_PER_MINUTE),
            "returned_at": format_instant(start + 12 * MICROS_PER_MINUTE),
            "client_informed": "before_leaving",
        }
        for name, text in zip(IMPORT_EXIT_FIELDS, exit_texts, strict=False):
            exit_[name] = text
            written.fields["exit", xid, name] = text
        lines.append(_line(exit_))
        if concern_text is not None:
            kid = f"k-{written.practice}-{i:04d}"
            raised = format_instant(start + 55 * MICROS_PER_MINUTE)
            lines.append(
                _line(
                    {
                        "kind": "concern",
                        "id": kid,
                        "session": sid,
                        "raised_at": raised,
                        "text": concern_text,
                    }
                )
            )
            written.fields["concern", kid, "text"] = concern_text
        i += 1
    with db.uow() as uow:
        import_records(uow, lines)


def _live(db: Database, sessions: int, texts: Iterator[str], written: Written) -> None:
    p = written.practice
    clock = Clock(START + 400 * 24 * 60 * MICROS_PER_MINUTE)
    flow = Workflow(db.uow, clock)
    for i in range(sessions):
        therapist = f"t-live-{i:03d}"
        s = flow.start_session(
            StartSession(
                practice=p,
                actor=therapist,
                therapist=therapist,
                client=f"client-{i:04d}",
                room=f"room-{i:03d}",
                modality="telehealth",
                billed_codes=("90834",),
            )
        )
        clock.advance(10)
        note, words, attendant, ems_note = (next(texts) for _ in range(4))
        x = flow.declare_exit(
            DeclareExit(
                practice=p,
                actor=therapist,
                session=s.id,
                reason="health_emergency",
                reason_note=note,
                client_informed="before_leaving",
                explanation=words,
                safeguards=("records_secured", "screen_locked", "door_closed"),
                client_attended_by=attendant,
                ems="not_needed",
                ems_note=ems_note,
                expected_minutes=5,
            )
        )
        written.fields["exit", x.id, "reason_note"] = note
        written.fields["exit", x.id, "client_attended_by"] = attendant
        written.notes.append(ems_note)
        clock.advance(3)
        flow.return_(Return(practice=p, actor=therapist, exit=x.id, checked_in=True))
        clock.advance(40)
        flow.end_session(EndSession(practice=p, actor=therapist, session=s.id))
        clock.advance(5)
        concern_text = next(texts)
        c = flow.raise_concern(RaiseConcern(practice=p, session=s.id, text=concern_text))
        written.fields["concern", c.id, "text"] = concern_text
        amended, amend_note = next(texts), next(texts)
        flow.amend(
            Amend(
                practice=p,
                actor=therapist,
                kind="exit",
                id=x.id,
                changes={"explanation": amended},
                note=amend_note,
            )
        )
        written.fields["exit", x.id, "explanation"] = amended  # the amendment replaced `words`
        written.notes.append(words)  # still in the ledger, as the tap recorded it
        written.notes.append(amend_note)


def _session(sid: str, practice: str, start: int) -> dict[str, object]:
    return {
        "kind": "session",
        "id": sid,
        "practice": practice,
        "therapist": "t-imp-001",
        "client": "client-0001",
        "room": "room-01",
        "modality": "in_person",
        "start": format_instant(start),
        "end": format_instant(start + 50 * MICROS_PER_MINUTE),
        "billed_codes": ["90834"],
    }


def _line(obj: dict[str, object]) -> bytes:
    return orjson.dumps(obj) + b"\n"
