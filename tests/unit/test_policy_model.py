"""The policy file: the shipped default, a practice's override merged over it, and the errors
that say which file, which key and what is wrong."""

from pathlib import Path

import pytest

from stepout.policy.model import (
    RULE_IDS,
    PolicyError,
    describe,
    load_policy,
    policy_as_toml,
    policy_from_toml,
)


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return str(caught.value)


def test_rule_ids_are_the_thirteen_of_the_design_in_order() -> None:
    assert RULE_IDS == (
        "reason-not-exceptional",
        "client-not-informed",
        "absence-too-long",
        "confidentiality-incomplete",
        "client-unattended",
        "ems-decision-missing",
        "no-check-in",
        "documentation-late",
        "repeated-exits",
        "exit-rate-high",
        "undeclared-exit",
        "billed-code-unsupported",
        "concern-unacknowledged",
    )


def test_default_policy_enables_every_rule_with_the_designed_parameters() -> None:
    policy = load_policy()
    rules = policy.rules
    assert policy.version
    assert policy.name
    assert policy.enabled_rules() == RULE_IDS
    assert rules.reason_not_exceptional.allowed_reasons == (
        "technical",
        "client_safety",
        "health_emergency",
    )
    assert set(rules.client_not_informed.before_leaving_reasons) == {"technical", "other"}
    assert rules.absence_too_long.limit_minutes == {"technical": 5, "client_safety": 15}
    assert set(rules.confidentiality_incomplete.required_safeguards) == {
        "records_secured",
        "screen_locked",
        "door_closed",
    }
    assert rules.client_unattended.severity_by_reason == {
        "health_emergency": "violation",
        "client_safety": "warning",
    }
    assert rules.ems_decision_missing.reasons == ("health_emergency",)
    assert rules.documentation_late.hours == 24
    assert rules.repeated_exits.max_exits_per_session == 1
    assert (rules.exit_rate_high.min_sessions, rules.exit_rate_high.max_share) == (20, 0.05)
    assert rules.concern_unacknowledged.days == 3


@pytest.mark.parametrize(
    ("rule_id", "severity"),
    [
        ("reason-not-exceptional", "violation"),
        ("client-not-informed", "violation"),
        ("absence-too-long", "warning"),
        ("confidentiality-incomplete", "violation"),
        ("ems-decision-missing", "violation"),
        ("no-check-in", "warning"),
        ("documentation-late", "warning"),
        ("repeated-exits", "warning"),
        ("exit-rate-high", "warning"),
        ("undeclared-exit", "violation"),
        ("billed-code-unsupported", "violation"),
        ("concern-unacknowledged", "warning"),
    ],
)
def test_default_severity_of_each_rule_matches_the_design(rule_id: str, severity: str) -> None:
    assert describe(load_policy())["rules"][rule_id]["severity"] == severity


def test_override_is_deep_merged_over_the_default(tmp_path: Path) -> None:
    policy = load_policy(
        write(
            tmp_path,
            '[policy]\nversion = "clinic-2"\n'
            "[rules.absence-too-long.limit_minutes]\ntechnical = 10\nother = 2.5\n",
        )
    )
    assert policy.version == "clinic-2"
    assert policy.name == load_policy().name  # inherited when the override names none
    assert policy.rules.absence_too_long.limit_minutes == {
        "technical": 10,
        "client_safety": 15,
        "other": 2.5,
    }
    assert policy.rules.absence_too_long.severity == "warning"
    assert policy.rules.documentation_late == load_policy().rules.documentation_late


def test_override_can_disable_a_rule_and_change_a_severity(tmp_path: Path) -> None:
    policy = load_policy(
        write(
            tmp_path,
            '[policy]\nversion = "v3"\nname = "Clinic protocol"\n'
            "[rules.no-check-in]\nenabled = false\n"
            '[rules.absence-too-long]\nseverity = "violation"\n',
        )
    )
    assert policy.name == "Clinic protocol"
    assert "no-check-in" not in policy.enabled_rules()
    assert policy.rules.absence_too_long.severity == "violation"


def test_a_list_in_the_override_replaces_the_default_list(tmp_path: Path) -> None:
    policy = load_policy(
        write(
            tmp_path,
            '[policy]\nversion = "v"\n'
            '[rules.confidentiality-incomplete]\nrequired_safeguards = ["records_secured"]\n',
        )
    )
    assert policy.rules.confidentiality_incomplete.required_safeguards == ("records_secured",)


@pytest.mark.parametrize(
    "text",
    [
        "[rules.no-check-in]\nenabled = false\n",
        '[policy]\nname = "No version"\n',
        "",
    ],
)
def test_an_override_must_name_its_own_version(tmp_path: Path, text: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'policy.toml'}: policy.version: is required")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[rules.absence-too-long.limit_minutes]\ntechnical = -1\n",
            "rules.absence-too-long.limit_minutes.technical: must be a positive number",
        ),
        (
            "[rules.absence-too-long.limit_minutes]\ntechnical = 0\n",
            "rules.absence-too-long.limit_minutes.technical: must be a positive number",
        ),
        (
            '[rules.absence-too-long.limit_minutes]\ntechnical = "5"\n',
            "rules.absence-too-long.limit_minutes.technical: must be a number",
        ),
        (
            "[rules.absence-too-long.limit_minutes]\ntech = 5\n",
            "rules.absence-too-long.limit_minutes.tech: unknown key",
        ),
        ("[rules.absence-too-long]\nlimit_minutes = 5\n", "limit_minutes: must be a table"),
        ("[rules.step-out-rarely]\nenabled = true\n", "rules.step-out-rarely: unknown rule id"),
        ("[rules.no-check-in]\nlimit = 5\n", "rules.no-check-in.limit: unknown key"),
        ("[rules.no-check-in]\nenabled = 1\n", "rules.no-check-in.enabled: must be true or false"),
        (
            '[rules.no-check-in]\nseverity = "fatal"\n',
            "rules.no-check-in.severity: must be 'violation' or 'warning'",
        ),
        (
            '[rules.reason-not-exceptional]\nallowed_reasons = ["technical", "boredom"]\n',
            "rules.reason-not-exceptional.allowed_reasons[1]: must be 'technical',",
        ),
        (
            '[rules.reason-not-exceptional]\nallowed_reasons = "technical"\n',
            "rules.reason-not-exceptional.allowed_reasons: must be a list",
        ),
        (
            '[rules.confidentiality-incomplete]\nrequired_safeguards = ["blinds_down"]\n',
            "rules.confidentiality-incomplete.required_safeguards[0]: must be 'records_secured'",
        ),
        (
            '[rules.client-unattended.severity_by_reason]\nother = "critical"\n',
            "rules.client-unattended.severity_by_reason.other: must be 'violation' or 'warning'",
        ),
        (
            "[rules.repeated-exits]\nmax_exits_per_session = 1.5\n",
            "rules.repeated-exits.max_exits_per_session: must be a whole number",
        ),
        (
            "[rules.exit-rate-high]\nmin_sessions = 0\n",
            "rules.exit-rate-high.min_sessions: must be at least 1",
        ),
        (
            "[rules.exit-rate-high]\nmax_share = 5\n",
            "rules.exit-rate-high.max_share: must be at most 1",
        ),
        ("[rules.documentation-late]\nhours = inf\n", "hours: must be a finite number"),
        ("colour = 'blue'\n", "colour: unknown key"),
    ],
)
def test_a_malformed_override_names_the_file_and_the_key_path(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = error_of(tmp_path, f'[policy]\nversion = "v"\n{text}')
    assert message.startswith(f"{tmp_path / 'policy.toml'}: ")
    assert expected in message


def test_a_blank_version_is_refused(tmp_path: Path) -> None:
    assert "policy.version: must not be blank" in error_of(tmp_path, '[policy]\nversion = " "\n')


def test_every_error_in_the_file_is_reported_at_once(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        '[policy]\nversion = "v"\n[rules.no-check-in]\nenabled = "yes"\nsevere = true\n',
    )
    lines = message.splitlines()
    assert len(lines) == 2
    assert any("rules.no-check-in.enabled" in line for line in lines)
    assert any("rules.no-check-in.severe: unknown key" in line for line in lines)


def test_invalid_toml_and_a_missing_file_are_policy_errors(tmp_path: Path) -> None:
    assert "not valid TOML" in error_of(tmp_path, "[policy\n")
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy(tmp_path / "absent.toml")


def test_policy_from_toml_labels_errors_with_the_given_name() -> None:
    with pytest.raises(PolicyError, match=r"^clinic\.toml: rules\.nope: unknown rule id"):
        policy_from_toml('[policy]\nversion = "v"\n[rules.nope]\n', "clinic.toml")


def test_describe_has_the_shape_of_the_policy_file() -> None:
    described = describe(load_policy())
    assert described["policy"] == {
        "version": load_policy().version,
        "name": load_policy().name,
    }
    assert tuple(described["rules"]) == RULE_IDS
    assert described["rules"]["absence-too-long"] == {
        "enabled": True,
        "severity": "warning",
        "limit_minutes": {"technical": 5, "client_safety": 15},
    }
    assert described["rules"]["exit-rate-high"]["max_share"] == 0.05


def test_policy_as_toml_reads_back_as_the_same_policy(tmp_path: Path) -> None:
    changed = load_policy(
        write(
            tmp_path,
            '[policy]\nversion = "v \\"quoted\\""\n'
            "[rules.absence-too-long.limit_minutes]\nother = 2.5\n"
            "[rules.undeclared-exit]\nenabled = false\n",
        )
    )
    assert load_policy(write(tmp_path, policy_as_toml(changed), "again.toml")) == changed


def test_rule_settings_are_looked_up_by_rule_id() -> None:
    policy = load_policy()
    assert policy.rule("documentation-late") is policy.rules.documentation_late
    with pytest.raises(KeyError):
        policy.rule("no-such-rule")
