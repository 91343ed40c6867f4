"""`stepout billing --format csv`, the file a biller imports into billing software: its header
and a row pinned, as docs/billing.md ("The CSV columns") documents them."""

import csv
import io
from pathlib import Path

import orjson
from typer.testing import CliRunner

from tests.e2e.test_cli import EXIT, SESSION, cli, run, write

__all__ = ["cli"]  # the fixture, used by name

HEADER = "session,gross_minutes,net_minutes,billed_codes,supported_codes,status"
CRISIS = (
    '{"kind":"session","id":"s2","practice":"p1","therapist":"t1","client":"c2","room":"r1",'
    '"modality":"in_person","start":"2026-11-04T09:00:00-05:00",'
    '"end":"2026-11-04T10:50:00-05:00","billed_codes":["90839","90840","90785"]}'
)  # 110 minutes reach a second unit of 90840 (105): undercoded


def test_the_header_and_a_row_are_as_documented(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "import", write(tmp_path, "month.jsonl", SESSION, EXIT, CRISIS))
    out = run(cli, "billing", "--format", "csv")
    header, *lines = out.splitlines()
    assert header == HEADER
    assert lines == [
        "s1,55,45,90837,90834,unsupported",
        "s2,110,110,90839 90840 90785,90839 90840 90840 90785,undercoded",
    ]
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0] == {
        "session": "s1",
        "gross_minutes": "55",
        "net_minutes": "45",
        "billed_codes": "90837",
        "supported_codes": "90834",
        "status": "unsupported",
    }
    only = run(cli, "billing", "--format", "csv", "--status", "unsupported").splitlines()
    assert only == [HEADER, "s1,55,45,90837,90834,unsupported"]


def test_no_session_is_a_header_alone(cli: CliRunner) -> None:
    assert run(cli, "billing", "--format", "csv") == HEADER + "\n"


def test_a_cell_that_would_run_as_a_formula_is_text(cli: CliRunner, tmp_path: Path) -> None:
    """Session ids are whatever the importing system sent: one that starts as a spreadsheet
    formula (= + - @, tab, carriage return) is written with a leading `'`, as the pages'
    downloads write it; the JSON format keeps it as it is."""
    ids = ("=HYPERLINK(1)", "+1", "-2", "@sum", "\tx", "plain")
    lines = [
        SESSION.replace('"id":"s1"', f'"id":{orjson.dumps(sid).decode()}')
        .replace('"client":"c1"', f'"client":"c-{n}"')
        .replace("09:00:00", f"{9 + n:02d}:00:00")
        .replace("09:55:00", f"{9 + n:02d}:55:00")
        for n, sid in enumerate(ids)
    ]
    run(cli, "import", write(tmp_path, "odd.jsonl", *lines))
    out = run(cli, "billing", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert sorted(r["session"] for r in rows) == sorted(
        "'" + sid if sid != "plain" else sid for sid in ids
    )
    as_json = orjson.loads(run(cli, "billing", "--format", "json"))
    assert sorted(r["session"] for r in as_json) == sorted(ids)


def test_a_leading_carriage_return_is_neutralised_too(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "import", write(tmp_path, "cr.jsonl", SESSION.replace('"id":"s1"', '"id":"\\rx"')))
    out = run(cli, "billing", "--format", "csv")
    assert "\n'\rx,55,55," in out
