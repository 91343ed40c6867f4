"""Command groups that keep an older one-command form working: `stepout import FILE` still
imports records, as `stepout import records FILE` does, beside `stepout import schedule FILE`."""

from typing import Any

import typer
from typer.core import TyperGroup


class DefaultGroup(TyperGroup):
    """A group that runs its `default` command when the first word names none of its own."""

    default = "records"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and not self.no_args_is_help:
            args = [self.default]
        elif args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


def default_group(help_text: str, *, no_args_is_help: bool = True, **kwargs: Any) -> typer.Typer:
    """With `no_args_is_help` False, the bare group runs its default command."""
    return typer.Typer(cls=DefaultGroup, help=help_text, no_args_is_help=no_args_is_help, **kwargs)
