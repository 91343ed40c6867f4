"""The protocol as code: the policy file, its thirteen rules, and the audit that runs them.

- `model`: the policy (shipped `default.toml`, a practice's override merged over it).
- `settings`: the typed settings of each rule.
- `rules`, `rules_exit`, `rules_session`: the rules, each built once per audit into a check.
- `engine`: `audit(bundles, policy, as_of, rules=None) -> list[Finding]`.
- `findings`: the `Finding` each rule reports.

Pure: nothing here touches a database, the network or the clock (as-of is an argument).
"""

from stepout.policy.engine import audit
from stepout.policy.findings import Finding, Severity
from stepout.policy.model import RULE_IDS, Policy, PolicyError, describe, load_policy

__all__ = [
    "RULE_IDS",
    "Finding",
    "Policy",
    "PolicyError",
    "Severity",
    "audit",
    "describe",
    "load_policy",
]
