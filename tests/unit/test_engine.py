"""The audit engine: which sessions it judges, which rules it computes, in which order its
findings come, and what every finding carries."""

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from stepout.domain.bundle import SessionBundle
from stepout.domain.instants import MICROS_PER_DAY, MICROS_PER_MINUTE, parse_instant
from stepout.domain.records import Concern, Exit, Session
from stepout.policy.engine import active_rules, audit
from stepout.policy.findings import Finding
from stepout.policy.model import RULE_IDS, load_policy, policy_from_toml

T0 = parse_instant("2025-03-03T10:00:00+00:00")
MIN, DAY = MICROS_PER_MINUTE, MICROS_PER_DAY
AS_OF = T0 + 10 * DAY
NOTE = "Stepping out to fix the video link."
CONCERN_TEXT = "Nobody told me when the session would resume."


def session(sid: str, therapist: str = "t-001", **fields: Any) -> Session:
    values: dict[str, Any] = {
        "practice": "p1",
        "therapist": therapist,
        "client": "client-0042",
        "room": "r1",
        "modality": "in_person",
        "start": T0,
        "end": T0 + 50 * MIN,
        "billed_codes": ("90834",),
    }
    values.update(fields)
    return Session(id=sid, **values)


def bad_exit(xid: str, sid: str, minute: int, **fields: Any) -> Exit:
    """An exit that breaks every exit rule a technical exit can break."""
    values: dict[str, Any] = {
        "source": "declared",
        "reason": "other",
        "left_at": T0 + minute * MIN,
        "returned_at": T0 + (minute + 20) * MIN,
        "reason_note": NOTE,
        "explanation": None,
        "client_informed": "not_informed",
    }
    values.update(fields)
    return Exit(id=xid, session=sid, **values)


def late_concern(kid: str, sid: str, raised_at: int = T0 + 60 * MIN) -> Concern:
    return Concern(kid, sid, raised_at, CONCERN_TEXT, None)


def keys(findings: list[Finding]) -> list[tuple[str, str | None, str | None]]:
    return [(f.rule, f.session, f.exit) for f in findings]


def test_findings_come_session_then_exits_by_time_then_concerns_then_rates() -> None:
    s1 = session("s1", billed_codes=("90837",))
    bundle = SessionBundle(
        s1,
        exits=(
            bad_exit("e9", "s1", 5, reason="health_emergency", left_at=T0 + 30 * MIN),
            bad_exit("e2", "s1", 5, reason="technical"),
            Exit("e1", "s1", "sensor", T0 + 30 * MIN, returned_at=T0 + 31 * MIN),
        ),
        concerns=(late_concern("k2", "s1"), late_concern("k1", "s1")),
    )
    found = audit([bundle], load_policy(), AS_OF)
    assert keys(found) == [
        ("repeated-exits", "s1", None),
        ("billed-code-unsupported", "s1", None),
        ("client-not-informed", "s1", "e2"),
        ("absence-too-long", "s1", "e2"),
        ("confidentiality-incomplete", "s1", "e2"),
        ("no-check-in", "s1", "e2"),
        ("documentation-late", "s1", "e2"),
        ("undeclared-exit", "s1", "e1"),
        ("client-not-informed", "s1", "e9"),
        ("confidentiality-incomplete", "s1", "e9"),
        ("client-unattended", "s1", "e9"),
        ("ems-decision-missing", "s1", "e9"),
        ("no-check-in", "s1", "e9"),
        ("documentation-late", "s1", "e9"),
        ("concern-unacknowledged", "s1", None),
        ("concern-unacknowledged", "s1", None),
    ]


def test_bundles_are_judged_in_input_order_and_exit_rates_come_last() -> None:
    bundles = [
        SessionBundle(session(f"s{i}", therapist=f"t-00{i % 2}"), (bad_exit(f"e{i}", f"s{i}", 5),))
        for i in range(40)
    ]
    bundles.reverse()
    found = audit(bundles, load_policy(), AS_OF, rules=["reason-not-exceptional", "exit-rate-high"])
    assert [f.session for f in found[:-2]] == [f"s{i}" for i in reversed(range(40))]
    assert keys(found[-2:]) == [("exit-rate-high", None, None)] * 2
    assert [f.therapist for f in found[-2:]] == ["t-000", "t-001"]


def test_sessions_in_progress_are_not_audited() -> None:
    running = session("s1", end=None, billed_codes=("90837",))
    bundle = SessionBundle(running, (bad_exit("e1", "s1", 5),), (late_concern("k1", "s1"),))
    assert audit([bundle], load_policy(), AS_OF) == []


def test_every_finding_names_the_therapist_and_the_policy_version() -> None:
    policy = policy_from_toml('[policy]\nversion = "clinic-2025-04"\n')
    bundles = [
        SessionBundle(
            session(f"s{i}", therapist="t-007", billed_codes=("90837",)),
            (bad_exit(f"e{i}", f"s{i}", 5),),
            (late_concern(f"k{i}", f"s{i}"),),
        )
        for i in range(20)
    ]
    found = audit(bundles, policy, AS_OF)
    assert {f.rule for f in found} >= {"exit-rate-high", "concern-unacknowledged"}
    assert {f.therapist for f in found} == {"t-007"}
    assert {f.policy_version for f in found} == {"clinic-2025-04"}


def test_no_message_repeats_free_text_from_the_record() -> None:
    s = session("s1")
    x = bad_exit("e1", "s1", 5, explanation=NOTE, client_informed="after_return")
    found = audit([SessionBundle(s, (x,), (late_concern("k1", "s1"),))], load_policy(), AS_OF)
    assert found
    for finding in found:
        assert NOTE not in finding.message
        assert CONCERN_TEXT not in finding.message
        assert "client-0042" not in finding.message


def test_the_rules_filter_computes_only_the_rules_asked_for() -> None:
    bundle = SessionBundle(session("s1", billed_codes=("90837",)), (bad_exit("e1", "s1", 5),))
    found = audit([bundle], load_policy(), AS_OF, rules={"no-check-in", "billed-code-unsupported"})
    assert keys(found) == [("billed-code-unsupported", "s1", None), ("no-check-in", "s1", "e1")]
    assert audit([bundle], load_policy(), AS_OF, rules=[]) == []


def test_an_unknown_rule_id_in_the_filter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rule id: no-such-rule"):
        audit([], load_policy(), AS_OF, rules=["no-such-rule"])


def test_a_disabled_rule_is_not_computed_even_when_asked_for() -> None:
    policy = policy_from_toml('[policy]\nversion = "v"\n[rules.no-check-in]\nenabled = false\n')
    bundle = SessionBundle(session("s1"), (bad_exit("e1", "s1", 5),))
    assert all(f.rule != "no-check-in" for f in audit([bundle], policy, AS_OF))
    assert audit([bundle], policy, AS_OF, rules=["no-check-in"]) == []
    assert active_rules(policy) == tuple(r for r in RULE_IDS if r != "no-check-in")


def test_a_changed_severity_shows_in_the_findings() -> None:
    policy = policy_from_toml(
        '[policy]\nversion = "v"\n[rules.no-check-in]\nseverity = "violation"\n'
    )
    bundle = SessionBundle(session("s1"), (bad_exit("e1", "s1", 5),))
    [finding] = audit([bundle], policy, AS_OF, rules=["no-check-in"])
    assert finding.severity == "violation"


def test_a_session_without_exits_or_concerns_is_judged_only_on_billing() -> None:
    fine = SessionBundle(session("s1"))
    short = SessionBundle(session("s2", billed_codes=("90837",)))
    unbilled = SessionBundle(session("s3", billed_codes=()))
    assert keys(audit([fine, short, unbilled], load_policy(), AS_OF)) == [
        ("billed-code-unsupported", "s2", None)
    ]


def test_a_session_with_only_a_concern_is_judged_on_both() -> None:
    bundle = SessionBundle(
        session("s1", billed_codes=("90837",)), concerns=(late_concern("k1", "s1"),)
    )
    assert keys(audit([bundle], load_policy(), AS_OF)) == [
        ("billed-code-unsupported", "s1", None),
        ("concern-unacknowledged", "s1", None),
    ]


def test_the_bundles_are_read_once_as_a_stream() -> None:
    def stream() -> Iterator[SessionBundle]:
        for i in range(3):
            yield SessionBundle(session(f"s{i}", billed_codes=("90837",)))

    assert len(audit(stream(), load_policy(), AS_OF)) == 3


def test_the_as_of_time_decides_what_is_late() -> None:
    s = session("s1")
    x = replace(bad_exit("e1", "s1", 5), signed_at=None)
    bundle = SessionBundle(s, (x,))
    early = audit([bundle], load_policy(), s.end or 0, rules=["documentation-late"])
    late = audit([bundle], load_policy(), AS_OF, rules=["documentation-late"])
    assert (early, len(late)) == ([], 1)


def test_a_finding_as_a_dict_has_exactly_the_interchange_keys() -> None:
    [finding] = audit([SessionBundle(session("s1", billed_codes=("90837",)))], load_policy(), AS_OF)
    assert finding.as_dict() == {
        "rule": "billed-code-unsupported",
        "severity": "violation",
        "session": "s1",
        "exit": None,
        "therapist": "t-001",
        "message": finding.message,
        "policy_version": load_policy().version,
    }


def mixed_bundles() -> list[SessionBundle]:
    bundles = []
    for i in range(30):
        sid = f"s{i}"
        exits = ()
        if i % 3 == 0:
            exits = (
                bad_exit(
                    f"e{i}",
                    sid,
                    5,
                    reason=("technical", "other", None, "health_emergency")[i % 12 // 3],
                ),
            )
        if i % 5 == 0:
            exits += (Exit(f"x{i}", sid, "sensor", T0 + 40 * MIN),)
        concerns = (late_concern(f"k{i}", sid),) if i % 7 == 0 else ()
        billed = ("90837",) if i % 4 == 0 else ("90834",)
        bundles.append(SessionBundle(session(sid, billed_codes=billed), exits, concerns))
    return bundles


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_a_partial_audit_finds_what_the_full_audit_finds_for_that_rule(rule_id: str) -> None:
    full = audit(mixed_bundles(), load_policy(), AS_OF)
    partial = audit(mixed_bundles(), load_policy(), AS_OF, rules=[rule_id])
    assert partial == [f for f in full if f.rule == rule_id]
    assert partial
