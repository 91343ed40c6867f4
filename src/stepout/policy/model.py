"""The policy: which rules apply, with which severity and parameters, under which version.

The shipped `default.toml` is the whole default policy; a practice's file is deep-merged over
it (tables merge key by key, any other value replaces) and must name its own version. Anything
unknown or ill-typed is a `PolicyError` that names the file and the key path.
"""

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as settings

from stepout.policy.settings import CONFIG, RULE_IDS, Rules, RuleSettings, Text

__all__ = [
    "DEFAULT_FILE",
    "RULE_IDS",
    "Policy",
    "PolicyError",
    "deep_merge",
    "describe",
    "load_policy",
    "policy_as_toml",
    "policy_from_toml",
]

DEFAULT_FILE: Final = "default.toml"


class PolicyError(ValueError):
    """A policy file that cannot be used: which file, which key, what is wrong."""


@settings(frozen=True, config=CONFIG)
class _Header:
    version: Text
    name: Text


@settings(frozen=True, config=CONFIG)
class _File:
    policy: _Header
    rules: Rules


_FILE: Final = TypeAdapter(_File)


@dataclasses.dataclass(frozen=True)
class Policy:
    version: str
    name: str
    rules: Rules
    # The file it was loaded from (the override, or the default); not part of its identity.
    source: str = dataclasses.field(default=DEFAULT_FILE, compare=False)

    def rule(self, rule_id: str) -> RuleSettings:
        """The settings of one rule, by its id (KeyError if unknown)."""
        if rule_id not in RULE_IDS:
            raise KeyError(rule_id)
        settings_: RuleSettings = getattr(self.rules, rule_id.replace("-", "_"))
        return settings_

    def enabled_rules(self) -> tuple[str, ...]:
        return tuple(r for r in RULE_IDS if self.rule(r).enabled)


def load_policy(path: Path | None = None) -> Policy:
    """The shipped default, or the default with the practice's file at `path` merged over."""
    if path is None:
        return _build(_default_table(), DEFAULT_FILE)
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{label}: cannot read the file: {exc}") from None
    return policy_from_toml(text, label)


def policy_from_toml(text: str, label: str = "policy.toml") -> Policy:
    """The default with the override `text` merged over; `label` names it in errors."""
    override = _parse(text, label)
    header = override.get("policy")
    if header is None or (isinstance(header, dict) and "version" not in header):
        raise PolicyError(f"{label}: policy.version: is required (name your policy's version)")
    rules = override.get("rules", {})
    if isinstance(rules, dict):
        unknown = [key for key in rules if key not in RULE_IDS]
        if unknown:
            raise PolicyError(
                "\n".join(f"{label}: rules.{key}: unknown rule id" for key in unknown)
            )
    return _build(deep_merge(_default_table(), override), label)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` merged in: tables merge key by key, any other value replaces."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            merged[key] = deep_merge(below, value)
        else:
            merged[key] = value
    return merged


@cache
def _default_text() -> str:
    return resources.files("stepout.policy").joinpath(DEFAULT_FILE).read_text(encoding="utf-8")


def _default_table() -> dict[str, Any]:
    return _parse(_default_text(), DEFAULT_FILE)


def _parse(text: str, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{label}: not valid TOML: {exc}") from None


def _build(table: dict[str, Any], label: str) -> Policy:
    try:
        parsed = _FILE.validate_python(table)
    except ValidationError as exc:
        raise PolicyError("\n".join(_explain(err, label) for err in exc.errors())) from None
    return Policy(parsed.policy.version, parsed.policy.name, parsed.rules, label)


_WHAT: Final[dict[str, str]] = {
    "missing": "is required",
    "unexpected_keyword_argument": "unknown key",
    "extra_forbidden": "unknown key",
    "greater_than": "must be a positive number",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "string_pattern_mismatch": "must not be blank",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "tuple_type": "must be a list",
    "dict_type": "must be a table",
    "dataclass_type": "must be a table",
}


def _explain(err: Any, label: str) -> str:
    loc = [f"[{part}]" if isinstance(part, int) else str(part) for part in err["loc"]]
    kind, ctx = err["type"], err.get("ctx") or {}
    if loc and loc[-1] == "[key]":
        loc.pop()
        what = f"unknown key; expected {ctx.get('expected', 'another key')}"
    elif kind == "literal_error":
        what = f"must be {ctx.get('expected')}"
    elif kind == "greater_than_equal":
        what = f"must be at least {ctx.get('ge')}"
    elif kind == "less_than_equal":
        what = f"must be at most {ctx.get('le')}"
    else:
        what = _WHAT.get(kind, str(err["msg"]))
    path = ".".join(loc).replace(".[", "[") or "(top level)"
    return f"{label}: {path}: {what}"


def describe(policy: Policy) -> dict[str, Any]:
    """The policy in the shape of its TOML file (for `stepout policy show`, JSON or TOML)."""
    rules = {rule_id: _plain(dataclasses.asdict(policy.rule(rule_id))) for rule_id in RULE_IDS}
    return {"policy": {"version": policy.version, "name": policy.name}, "rules": rules}


def policy_as_toml(policy: Policy) -> str:
    """The whole effective policy as a TOML file that `load_policy` reads back unchanged."""
    lines: list[str] = []
    _emit(describe(policy), (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _emit(table: dict[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, dict)]
    if path and (scalars or not tables):
        lines += ["", f"[{'.'.join(path)}]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in scalars]
    for key, sub in tables:
        _emit(sub, (*path, key), lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string
