"""`stepout import schedule`, end to end through the installed `stepout` command on SQLite
and PostgreSQL: what the IT person types, what they read back, and what the audit trail and
`stepout verify` say. Every id here is synthetic."""

import os
import subprocess
import sys
from pathlib import Path

import orjson
from sqlalchemy import create_engine, text

STEPOUT = str(Path(sys.executable).with_name("stepout"))
HEADER = "id,therapist,client,room,modality,start,end,billed_codes"
ROWS = (
    "a-1,t-1,c-0001,room-1,in_person,2026-12-07T09:00:00-05:00,2026-12-07T09:50:00-05:00,90834",
    "a-2,t-1,c-0002,room-1,telehealth,2026-12-07T10:00:00-05:00,2026-12-07T10:55:00-05:00,",
)
ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Synthetic//EN\r\n"
    "BEGIN:VEVENT\r\nUID:cal-1@calendar.example\r\nDTSTAMP:20261101T000000Z\r\n"
    "DTSTART;TZID=Europe/Berlin:20261207T090000\r\nDTEND;TZID=Europe/Berlin:20261207T095000\r\n"
    "X-STEPOUT-THERAPIST:t-1\r\nX-STEPOUT-CLIENT:c-0003\r\nX-STEPOUT-ROOM:room-1\r\n"
    "X-STEPOUT-MODALITY:in_person\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


FHIR = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {"resource": {"resourceType": "Practitioner", "id": "t-1"}},
        {
            "resource": {
                "resourceType": "Appointment",
                "id": "fa-1",
                "status": "booked",
                "start": "2026-12-08T09:00:00-05:00",
                "end": "2026-12-08T09:50:00-05:00",
                "participant": [
                    {"actor": {"reference": "Practitioner/t-1"}, "status": "accepted"},
                    {"actor": {"reference": "Patient/c-0004"}, "status": "accepted"},
                    {"actor": {"reference": "Location/room-1"}, "status": "accepted"},
                ],
            }
        },
    ],
}


def stepout(url: str, *args: str, code: int = 0) -> tuple[str, str]:
    env = {**os.environ, "STEPOUT_DATABASE_URL": url, "COLUMNS": "200"}
    done = subprocess.run(
        [STEPOUT, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout, done.stderr


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_import_schedule_through_the_stepout_command(database_url: str, tmp_path: Path) -> None:
    url = database_url
    stepout(url, "init")
    stepout(url, "practices", "add", "p1", "--name", "Synthetic", "--timezone", "America/New_York")
    stepout(url, "users", "add", "t-1", "--practice", "p1", "--role", "therapist")
    stepout(url, "rooms", "add", "room-1", "--practice", "p1", "--name", "Room one")
    good = tmp_path / "week.csv"
    good.write_text("\n".join((HEADER, *ROWS)) + "\n")
    out, _ = stepout(url, "import", "schedule", str(good), "--practice", "p1")
    assert "Read 2 appointments: 2 scheduled" in out
    out, _ = stepout(url, "import", "schedule", str(good), "--practice", "p1")
    assert "0 scheduled, 0 rescheduled, 0 cancelled, 2 unchanged" in out

    moved = ROWS[0].replace("T09:00", "T11:00").replace("T09:50", "T11:50")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join((HEADER, moved, ROWS[1].replace("t-1", "t-9"))) + "\n")
    _, err = stepout(url, "import", "schedule", str(bad), "--practice", "p1", code=1)
    assert "line 3: therapist: is not a therapist here" in err
    assert "rejected, 1 errors; nothing was stored" in err
    nine = query(url, "SELECT start_us FROM appointments WHERE id = 'a-1'")
    assert nine == [(1796652000000000,)]  # 2026-12-07T14:00Z: not moved to 11:00

    calendar = tmp_path / "calendar.ics"
    calendar.write_text(ICS, newline="")
    out, _ = stepout(url, "import", "schedule", str(calendar), "--practice", "p1")
    assert "1 scheduled" in out
    _, err = stepout(url, "import", "schedule", str(calendar), code=2)
    assert "--practice is required" in err

    bundle = tmp_path / "appointments.json"
    bundle.write_bytes(orjson.dumps(FHIR))
    out, _ = stepout(url, "import", "schedule", str(bundle), "--practice", "p1")
    assert "1 scheduled" in out
    backwards = orjson.loads(orjson.dumps(FHIR))
    backwards["entry"][1]["resource"]["end"] = "2026-12-08T08:00:00-05:00"
    bundle.write_bytes(orjson.dumps(backwards))
    _, err = stepout(url, "import", "schedule", str(bundle), "--practice", "p1", code=1)
    assert "entry[1]: end: is not after start" in err

    audited = query(
        url, "SELECT action, outcome, item_count FROM audit_log WHERE action = 'schedule.import' "
        "ORDER BY seq",
    )  # fmt: skip
    assert audited == [
        ("schedule.import", "ok", 2),
        ("schedule.import", "ok", 2),
        ("schedule.import", "failed", None),
        ("schedule.import", "ok", 1),
        ("schedule.import", "ok", 1),
        ("schedule.import", "failed", None),
    ]
    assert query(url, "SELECT count(*) FROM appointments") == [(4,)]
    out, _ = stepout(url, "verify")
    assert "Query tables agree with the ledger." in out
