"""Usage errors of the `objget` command: a wrong option, value or argument combination, found
before anything is asked of a server. Exit 2, the reason in one line after the usage line, in
the words the command used when it was built on click (scripts may match them):

    Usage: objget [OPTIONS] SOURCE [DEST]
    Try 'objget --help' for help.

    Error: Invalid value for '-j' / '--max-workers': 0 is not in the range 1<=x<=256.
"""

from __future__ import annotations

import sys

from .._exit import EXIT

__all__ = ["USAGE", "UsageError", "report"]

USAGE = "objget [OPTIONS] SOURCE [DEST]"


class UsageError(Exception):
    """The command line asks for something the command does not do; the message names the
    option or argument and never quotes a secret (a header's value, a proxy's password)."""


def report(exc: UsageError) -> int:
    """Print `exc` as the command reports a usage error (stderr); the exit code (2)."""
    print(
        f"Usage: {USAGE}\nTry 'objget --help' for help.\n\nError: {exc}",
        file=sys.stderr,
        flush=True,
    )
    return EXIT["usage"]
