"""Synthetic practices for demos, tests and benchmarks: pseudonymous, deterministic for a seed,
built with the standard library's `random` only. See docs/synthetic-data.md."""

from stepout.synthetic.generate import GeneratorConfig, generate, write_jsonl

__all__ = ["GeneratorConfig", "generate", "write_jsonl"]
