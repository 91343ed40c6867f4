"""Each rule of the protocol, on both sides of its threshold, one rule at a time."""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from stepout.domain.bundle import SessionBundle
from stepout.domain.instants import (
    MICROS_PER_DAY,
    MICROS_PER_HOUR,
    MICROS_PER_MINUTE,
    MICROS_PER_SECOND,
    parse_instant,
)
from stepout.domain.records import Concern, Exit, Session
from stepout.policy.engine import audit
from stepout.policy.findings import Finding
from stepout.policy.model import Policy, load_policy, policy_from_toml

T0 = parse_instant("2025-03-03T10:00:00+00:00")
MIN, HOUR, DAY = MICROS_PER_MINUTE, MICROS_PER_HOUR, MICROS_PER_DAY
END = T0 + 50 * MIN  # the default session's end
LATER = END + 2 * DAY  # an as-of by which everything is judged
ALL_SAFEGUARDS = frozenset({"records_secured", "screen_locked", "door_closed"})
EXPLANATION = "Stepping out to fix the video link."


def session(
    sid: str = "s1", *, minutes: int = 50, billed: Sequence[str] = (), therapist: str = "t-001"
) -> Session:
    return Session(
        sid,
        "p1",
        therapist,
        "client-0042",
        "r1",
        "telehealth",
        T0,
        T0 + minutes * MIN,
        tuple(billed),
    )


def exit_(xid: str = "e1", **fields: Any) -> Exit:
    """A compliant exit (for its reason) from minute 10 to 13, unless `fields` say otherwise."""
    reason = fields.get("reason", "technical")
    values: dict[str, Any] = {
        "source": "declared",
        "reason": reason,
        "left_at": T0 + 10 * MIN,
        "returned_at": T0 + 13 * MIN,
        "client_informed": "before_leaving",
        "explanation": EXPLANATION,
        "safeguards": ALL_SAFEGUARDS,
        "client_attended_by": "staff-7"
        if reason in ("client_safety", "health_emergency")
        else None,
        "ems": "not_needed" if reason == "health_emergency" else None,
        "checked_in": True,
        "signed_at": END + HOUR,
    }
    values.update(fields)
    return Exit(id=xid, session=values.pop("session", "s1"), **values)


def judge(
    rule: str,
    *exits: Exit,
    s: Session | None = None,
    concerns: Sequence[Concern] = (),
    as_of: int = LATER,
    policy: Policy | None = None,
) -> list[Finding]:
    bundle = SessionBundle(s or session(), tuple(exits), tuple(concerns))
    return audit([bundle], policy or load_policy(), as_of, rules=[rule])


def override(text: str) -> Policy:
    return policy_from_toml(f'[policy]\nversion = "clinic-7"\n{text}')


# --- a compliant exit -------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["technical", "client_safety", "health_emergency"])
def test_a_compliant_exit_has_no_finding_under_any_rule(reason: str) -> None:
    bundle = SessionBundle(session(billed=["90834"]), (exit_(reason=reason),))
    assert audit([bundle], load_policy(), LATER) == []


# --- reason-not-exceptional -------------------------------------------------------------------


def test_reason_other_is_a_violation() -> None:
    [finding] = judge("reason-not-exceptional", exit_(reason="other"))
    assert (finding.severity, finding.session, finding.exit) == ("violation", "s1", "e1")
    assert "'other'" in finding.message
    assert "technical, client-safety and health-emergency" in finding.message


def test_a_declared_exit_with_no_reason_is_a_violation() -> None:
    [finding] = judge("reason-not-exceptional", exit_(reason=None))
    assert finding.severity == "violation"
    assert "without a reason" in finding.message


def test_a_classified_sensor_exit_is_judged_on_its_reason() -> None:
    assert judge("reason-not-exceptional", exit_(source="sensor", reason="other"))
    assert judge("reason-not-exceptional", exit_(source="sensor", reason="technical")) == []


def test_the_policy_can_allow_another_reason() -> None:
    policy = override('[rules.reason-not-exceptional]\nallowed_reasons = ["technical", "other"]')
    assert judge("reason-not-exceptional", exit_(reason="other"), policy=policy) == []
    assert judge("reason-not-exceptional", exit_(reason="client_safety"), policy=policy)


# --- client-not-informed ----------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["technical", "client_safety", "health_emergency", "other"])
def test_telling_the_client_before_leaving_satisfies_every_reason(reason: str) -> None:
    assert judge("client-not-informed", exit_(reason=reason)) == []


@pytest.mark.parametrize("reason", ["client_safety", "health_emergency"])
def test_urgent_reasons_may_be_explained_after_the_return(reason: str) -> None:
    assert judge("client-not-informed", exit_(reason=reason, client_informed="after_return")) == []


@pytest.mark.parametrize("reason", ["technical", "other", None])
def test_other_reasons_must_be_explained_before_leaving(reason: str | None) -> None:
    [finding] = judge("client-not-informed", exit_(reason=reason, client_informed="after_return"))
    assert finding.severity == "violation"
    assert "only after the return" in finding.message


@pytest.mark.parametrize("reason", ["technical", "client_safety", "health_emergency"])
def test_not_informing_the_client_is_a_violation(reason: str) -> None:
    [finding] = judge("client-not-informed", exit_(reason=reason, client_informed="not_informed"))
    assert finding.message == "The client was not told why the therapist left."


@pytest.mark.parametrize("explanation", [None, "", "   "])
@pytest.mark.parametrize("informed", ["before_leaving", "after_return"])
def test_an_empty_explanation_is_a_violation(explanation: str | None, informed: str) -> None:
    x = exit_(reason="health_emergency", client_informed=informed, explanation=explanation)
    [finding] = judge("client-not-informed", x)
    assert "No words said to the client" in finding.message


def test_the_policy_can_let_technical_exits_be_explained_afterwards() -> None:
    policy = override('[rules.client-not-informed]\nbefore_leaving_reasons = ["other"]')
    x = exit_(client_informed="after_return")
    assert judge("client-not-informed", x, policy=policy) == []


# --- absence-too-long -------------------------------------------------------------------------


def away(reason: str, micros: int, **fields: Any) -> Exit:
    left = T0 + 10 * MIN
    return exit_(reason=reason, left_at=left, returned_at=left + micros, **fields)


@pytest.mark.parametrize(("reason", "limit"), [("technical", 5), ("client_safety", 15)])
def test_an_absence_at_the_limit_is_allowed_and_beyond_it_is_a_warning(
    reason: str, limit: int
) -> None:
    assert judge("absence-too-long", away(reason, limit * MIN)) == []
    [finding] = judge("absence-too-long", away(reason, limit * MIN + MICROS_PER_SECOND))
    assert finding.severity == "warning"
    assert f"lasted {limit} min 1 s; the policy allows {limit} min." in finding.message


def test_the_message_gives_the_minutes_and_the_limit() -> None:
    [finding] = judge("absence-too-long", away("technical", 12 * MIN))
    assert finding.message == "Technical exit lasted 12 min; the policy allows 5 min."


@pytest.mark.parametrize("reason", ["health_emergency", "other"])
def test_reasons_without_a_limit_are_never_too_long(reason: str) -> None:
    assert judge("absence-too-long", away(reason, 35 * MIN)) == []


def test_an_exit_that_never_returned_lasts_to_the_session_end() -> None:
    still_out = exit_(left_at=END - 6 * MIN, returned_at=None)
    [finding] = judge("absence-too-long", still_out)
    assert "lasted 6 min (no return recorded" in finding.message
    assert judge("absence-too-long", exit_(left_at=END - 5 * MIN, returned_at=None)) == []


def test_a_changed_limit_applies_and_may_be_fractional() -> None:
    policy = override(
        "[rules.absence-too-long.limit_minutes]\ntechnical = 10\nhealth_emergency = 2.5\n"
    )
    assert judge("absence-too-long", away("technical", 8 * MIN), policy=policy) == []
    [finding] = judge("absence-too-long", away("health_emergency", 3 * MIN), policy=policy)
    assert finding.message.endswith("the policy allows 2.5 min.")
    assert (
        judge("absence-too-long", away("health_emergency", 150 * MICROS_PER_SECOND), policy=policy)
        == []
    )


# --- confidentiality-incomplete ---------------------------------------------------------------


def test_a_missing_safeguard_is_a_violation_naming_it() -> None:
    x = exit_(safeguards=frozenset({"records_secured", "door_closed"}))
    [finding] = judge("confidentiality-incomplete", x)
    assert finding.severity == "violation"
    assert finding.message == (
        "Safeguards not confirmed: screen locked; "
        "the policy requires records secured, screen locked and door closed."
    )


def test_no_safeguard_names_all_three() -> None:
    [finding] = judge("confidentiality-incomplete", exit_(safeguards=frozenset()))
    assert "records secured, screen locked and door closed" in finding.message


def test_the_policy_decides_which_safeguards_are_required() -> None:
    policy = override('[rules.confidentiality-incomplete]\nrequired_safeguards = ["door_closed"]')
    x = exit_(safeguards=frozenset({"door_closed"}))
    assert judge("confidentiality-incomplete", x, policy=policy) == []


# --- client-unattended ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "severity"), [("health_emergency", "violation"), ("client_safety", "warning")]
)
@pytest.mark.parametrize("attendant", [None, " "])
def test_an_unattended_client_has_the_severity_of_the_reason(
    reason: str, severity: str, attendant: str | None
) -> None:
    [finding] = judge("client-unattended", exit_(reason=reason, client_attended_by=attendant))
    assert finding.severity == severity
    assert "staff" not in finding.message


@pytest.mark.parametrize("reason", ["health_emergency", "client_safety"])
def test_an_attended_client_has_no_finding(reason: str) -> None:
    assert judge("client-unattended", exit_(reason=reason, client_attended_by="staff-7")) == []


def test_a_technical_exit_needs_no_attendant() -> None:
    assert judge("client-unattended", exit_(reason="technical", client_attended_by=None)) == []


def test_the_policy_sets_the_severity_per_reason() -> None:
    policy = override('[rules.client-unattended.severity_by_reason]\ntechnical = "warning"\n')
    [finding] = judge("client-unattended", exit_(client_attended_by=None), policy=policy)
    assert finding.severity == "warning"


# --- ems-decision-missing ---------------------------------------------------------------------


def test_a_health_emergency_without_an_ems_decision_is_a_violation() -> None:
    [finding] = judge("ems-decision-missing", exit_(reason="health_emergency", ems=None))
    assert finding.severity == "violation"
    assert "emergency services" in finding.message


@pytest.mark.parametrize("ems", ["called", "not_needed"])
def test_a_recorded_ems_decision_satisfies_the_rule(ems: str) -> None:
    assert judge("ems-decision-missing", exit_(reason="health_emergency", ems=ems)) == []


def test_other_reasons_need_no_ems_decision() -> None:
    assert judge("ems-decision-missing", exit_(reason="client_safety", ems=None)) == []


# --- no-check-in ------------------------------------------------------------------------------


def test_no_check_in_is_a_warning() -> None:
    [finding] = judge("no-check-in", exit_(checked_in=False))
    assert finding.severity == "warning"
    assert judge("no-check-in", exit_(checked_in=True)) == []


# --- documentation-late -----------------------------------------------------------------------


def test_an_unsigned_exit_is_not_late_until_24_hours_after_the_session() -> None:
    unsigned = exit_(signed_at=None)
    assert judge("documentation-late", unsigned, as_of=END + 24 * HOUR) == []
    [finding] = judge("documentation-late", unsigned, as_of=END + 24 * HOUR + 1)
    assert finding.severity == "warning"
    assert "not signed 24 h after the session ended" in finding.message


def test_a_signature_within_24_hours_is_on_time() -> None:
    assert judge("documentation-late", exit_(signed_at=END + 24 * HOUR)) == []


def test_a_signature_after_24_hours_is_late() -> None:
    [finding] = judge("documentation-late", exit_(signed_at=END + 25 * HOUR), as_of=END + 30 * HOUR)
    assert finding.message.startswith("Exit signed 25 h after the session ended")


def test_a_signature_after_the_as_of_time_counts_as_not_signed() -> None:
    signed_later = exit_(signed_at=END + 2 * HOUR)
    assert judge("documentation-late", signed_later, as_of=END + HOUR) == []
    very_late = exit_(signed_at=END + 40 * HOUR)
    [finding] = judge("documentation-late", very_late, as_of=END + 30 * HOUR)
    assert "not signed 30 h after" in finding.message


def test_the_policy_sets_the_hours() -> None:
    policy = override("[rules.documentation-late]\nhours = 48")
    assert judge("documentation-late", exit_(signed_at=END + 47 * HOUR), policy=policy) == []


# --- repeated-exits ---------------------------------------------------------------------------


def test_one_exit_is_not_repeated() -> None:
    assert judge("repeated-exits", exit_()) == []


def test_a_second_exit_gives_one_warning_for_the_session() -> None:
    second = exit_("e2", left_at=T0 + 20 * MIN, returned_at=T0 + 21 * MIN)
    third = exit_("e3", left_at=T0 + 30 * MIN, returned_at=T0 + 31 * MIN)
    [finding] = judge("repeated-exits", exit_(), second, third)
    assert (finding.severity, finding.session, finding.exit) == ("warning", "s1", None)
    assert finding.message == "3 exits in one session; the policy allows at most 1."


def test_sensor_exits_count_as_exits() -> None:
    sensed = exit_("e2", source="sensor", reason=None, left_at=T0 + 20 * MIN)
    assert judge("repeated-exits", exit_(), sensed)


def test_the_policy_sets_the_most_exits() -> None:
    policy = override("[rules.repeated-exits]\nmax_exits_per_session = 2")
    assert judge("repeated-exits", exit_(), exit_("e2"), policy=policy) == []


# --- undeclared-exit --------------------------------------------------------------------------


def test_an_unclassified_sensor_exit_yields_only_undeclared_exit() -> None:
    sensed = Exit("e1", "s1", "sensor", T0 + 10 * MIN, returned_at=T0 + 16 * MIN)
    bundle = SessionBundle(session(), (sensed,))
    [finding] = audit([bundle], load_policy(), LATER)
    assert (finding.rule, finding.severity, finding.exit) == ("undeclared-exit", "violation", "e1")
    assert "absence of 6 min" in finding.message


def test_a_classified_sensor_exit_is_judged_like_any_exit() -> None:
    sensed = exit_(source="sensor", reason="technical", checked_in=False)
    bundle = SessionBundle(session(), (sensed,))
    assert [f.rule for f in audit([bundle], load_policy(), LATER)] == ["no-check-in"]


def test_a_declared_exit_without_reason_is_not_undeclared() -> None:
    assert judge("undeclared-exit", exit_(reason=None)) == []


# --- billed-code-unsupported ------------------------------------------------------------------


def test_a_code_the_minutes_reach_is_supported() -> None:
    assert judge("billed-code-unsupported", s=session(minutes=53, billed=["90837"])) == []


def test_a_code_the_minutes_do_not_reach_is_a_violation() -> None:
    [finding] = judge("billed-code-unsupported", s=session(minutes=52, billed=["90837"]))
    assert (finding.severity, finding.exit) == ("violation", None)
    assert finding.message == (
        "Billed 90837 needs at least 53 min of face-to-face time; "
        "the session had 52 min net of exits."
    )


def test_exits_are_subtracted_from_face_to_face_time() -> None:
    s = session(minutes=58, billed=["90837"])
    assert judge("billed-code-unsupported", away("technical", 5 * MIN), s=s) == []
    [finding] = judge("billed-code-unsupported", away("technical", 6 * MIN), s=s)
    assert "52 min net" in finding.message


def test_an_exit_that_never_returned_is_subtracted_to_the_session_end() -> None:
    s = session(minutes=60, billed=["90837"])
    [finding] = judge(
        "billed-code-unsupported", exit_(left_at=T0 + 50 * MIN, returned_at=None), s=s
    )
    assert "50 min net" in finding.message


def test_one_finding_per_session_names_every_unsupported_code() -> None:
    s = session(minutes=40, billed=["90837", "90785", "90839", "90840"])
    [finding] = judge("billed-code-unsupported", s=s)
    assert finding.message == (
        "Billed 90837 needs at least 53 min and 90840 (unit 1) at least 75 min "
        "of face-to-face time; the session had 40 min net of exits."
    )


def test_the_unsupported_crisis_units_are_numbered() -> None:
    s = session(minutes=110, billed=["90839", "90840", "90840", "90840"])
    [finding] = judge("billed-code-unsupported", s=s)
    assert "90840 (unit 3) needs at least 135 min" in finding.message


@pytest.mark.parametrize("billed", [[], ["90785"]])
def test_nothing_time_based_billed_is_never_unsupported(billed: list[str]) -> None:
    assert judge("billed-code-unsupported", s=session(minutes=5, billed=billed)) == []


# --- concern-unacknowledged -------------------------------------------------------------------

RAISED = END + HOUR


def concern(acknowledged_at: int | None = None) -> Concern:
    return Concern("k1", "s1", RAISED, "I felt alone when the screen went dark.", acknowledged_at)


def test_an_unacknowledged_concern_is_late_only_after_three_days() -> None:
    assert judge("concern-unacknowledged", concerns=[concern()], as_of=RAISED + 3 * DAY) == []
    [finding] = judge("concern-unacknowledged", concerns=[concern()], as_of=RAISED + 3 * DAY + 1)
    assert (finding.severity, finding.session, finding.exit) == ("warning", "s1", None)
    assert "not been acknowledged 3 days" in finding.message
    assert "alone" not in finding.message


def test_an_acknowledgement_within_three_days_is_on_time() -> None:
    on_time = concern(RAISED + 3 * DAY)
    assert judge("concern-unacknowledged", concerns=[on_time], as_of=RAISED + 9 * DAY) == []


def test_an_acknowledgement_after_three_days_is_late() -> None:
    late = concern(RAISED + 4 * DAY)
    [finding] = judge("concern-unacknowledged", concerns=[late], as_of=RAISED + 9 * DAY)
    assert "acknowledged 4 days after it was raised" in finding.message


def test_an_acknowledgement_after_the_as_of_time_counts_as_not_done() -> None:
    later = concern(RAISED + 2 * DAY)
    assert judge("concern-unacknowledged", concerns=[later], as_of=RAISED + DAY) == []
    much_later = concern(RAISED + 6 * DAY)
    [finding] = judge("concern-unacknowledged", concerns=[much_later], as_of=RAISED + 5 * DAY)
    assert "not been acknowledged 5 days" in finding.message


def test_the_policy_sets_the_days() -> None:
    policy = override("[rules.concern-unacknowledged]\ndays = 1")
    assert judge(
        "concern-unacknowledged", concerns=[concern()], as_of=RAISED + 2 * DAY, policy=policy
    )


# --- exit-rate-high ---------------------------------------------------------------------------


def caseload(
    therapist: str, sessions: int, with_exits: int, *, sensor: bool = False, exits_each: int = 1
) -> list[SessionBundle]:
    bundles = []
    for i in range(sessions):
        sid = f"{therapist}-s{i}"
        s = replace(session(sid), therapist=therapist)
        exits = ()
        if i < with_exits:
            src: dict[str, Any] = {"source": "sensor", "reason": None} if sensor else {}
            exits = tuple(
                exit_(f"{sid}-e{k}", session=sid, left_at=T0 + (10 + 5 * k) * MIN, **src)
                for k in range(exits_each)
            )
        bundles.append(SessionBundle(s, exits))
    return bundles


def rate(bundles: list[SessionBundle], policy: Policy | None = None) -> list[Finding]:
    return audit(bundles, policy or load_policy(), LATER, rules=["exit-rate-high"])


def test_exits_in_exactly_five_percent_of_sessions_are_allowed() -> None:
    assert rate(caseload("t-001", 20, 1)) == []
    assert rate(caseload("t-001", 40, 2)) == []


def test_exits_in_more_than_five_percent_of_sessions_are_a_warning() -> None:
    [finding] = rate(caseload("t-001", 40, 3))
    assert (finding.severity, finding.session, finding.exit) == ("warning", None, None)
    assert finding.therapist == "t-001"
    assert finding.message == (
        "The therapist left during 3 of 40 sessions (7.5 %); the policy allows at most 5 %."
    )


def test_a_therapist_with_fewer_than_twenty_sessions_is_not_judged() -> None:
    assert rate(caseload("t-001", 19, 10)) == []
    assert rate(caseload("t-001", 20, 2))


def test_the_share_counts_sessions_not_exits() -> None:
    assert rate(caseload("t-001", 20, 1, exits_each=3)) == []


def test_sensor_exits_count_toward_the_share() -> None:
    assert rate(caseload("t-001", 20, 2, sensor=True))


def test_sessions_in_progress_do_not_count() -> None:
    bundles = caseload("t-001", 20, 2)
    bundles[5] = replace(bundles[5], session=replace(bundles[5].session, end=None))
    assert rate(bundles) == []


def test_the_policy_sets_the_threshold() -> None:
    policy = override("[rules.exit-rate-high]\nmin_sessions = 10\nmax_share = 0.25")
    assert rate(caseload("t-001", 10, 2), policy) == []
    assert rate(caseload("t-001", 10, 3), policy)


def test_the_rate_is_judged_per_therapist() -> None:
    found = rate(caseload("t-002", 20, 2) + caseload("t-001", 20, 1) + caseload("t-000", 20, 5))
    assert [f.therapist for f in found] == ["t-000", "t-002"]
