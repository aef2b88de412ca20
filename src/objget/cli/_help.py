"""`objget --help`: argparse renders the help from the options `Parser.add` recorded (one
declaration of each option; `_args.py` reads the command line without argparse, so only the
help pays for importing it and for its `gettext`/`locale` look-ups).

The layout is click's, as the command printed it when it was built on click: `Usage:`, the
description and epilog as written, `-j, --max-workers N`, at most 78 columns.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._args import USAGE

if TYPE_CHECKING:
    from ._args import Parser

__all__ = ["render"]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """click's layout: `Usage:`, `-j, --max-workers N`, at most 78 columns."""

    def __init__(self, prog: str) -> None:
        import shutil

        width = max(min(shutil.get_terminal_size().columns, 80) - 2, 50)
        super().__init__(prog, max_help_position=34, width=width)

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "Usage: ")

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap  # as argparse does, without collapsing spaces (`HEX  NAME`)

        return textwrap.wrap(text, width)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        names = ", ".join(action.option_strings)
        return names if action.nargs == 0 else f"{names} {action.metavar}"


def render(p: Parser) -> str:
    """The help text of the options `p` declares, in their order."""
    parser = argparse.ArgumentParser(
        prog="objget", usage=USAGE, description=p.description, epilog=p.epilog,
        formatter_class=_Formatter, add_help=False, allow_abbrev=False,
    )  # fmt: skip
    group = parser.add_argument_group("Options")
    for e in p.entries:
        if e.metavar is None:
            group.add_argument(*e.names, action=e.action, dest=e.dest, help=e.help)
        else:
            group.add_argument(
                *e.names, metavar=e.metavar, dest=e.dest, action=e.action, help=e.help
            )
    return parser.format_help()
