"""The command line's grammar on the standard library's argparse: options, their values, the
help text and the usage errors.

Why not click (DESIGN.md named it): at 8 MiB the whole command is its start-up, and click
brought `uuid` -> `platform`, its own ten modules, and `inspect` and `datetime` before objget
needed them. Counted with callgrind, the quiet 8 MiB download from nginx went from 384 M to
343 M instructions with this module (`python -c pass`: 39 M); argparse's own share is ~5 M to
import and ~3 M to declare the options (docs/architecture.md, Start-up). The user sees the
same command: the same options and defaults, click's usage errors word for word (scripts may
match them), and its shell completion protocol (`_complete.py`).

Parsing is two steps. `Parser.tokens` first reads the words as click did: an option that takes
a value takes the next word whatever it looks like (`-H -x` is a header `-x`), `--ray` takes
one unless an option follows, `--request-payer` takes only `requester`, and `--` ends the
options. It hands argparse `--name=value` words, so argparse never guesses, and its own
positional handling (which cannot put an optional DEST after options) is not used: SOURCE and
DEST are the words left over. Values stay strings while argparse reads; they are checked and
converted afterwards, so `--help` wins over a bad value, as it did.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from .._exit import EXIT

__all__ = [
    "USAGE",
    "Entry",
    "Parser",
    "UsageError",
    "choice",
    "existing_file",
    "int_range",
    "number",
    "report",
]

USAGE = "objget [OPTIONS] SOURCE [DEST]"


class UsageError(Exception):
    """The command line asks for something the command does not do (exit 2); the message
    names the option or argument (never a header's value)."""


def report(exc: UsageError) -> int:
    """Print `exc` as the command reports a usage error, on stderr, in click's layout:

        Usage: objget [OPTIONS] SOURCE [DEST]
        Try 'objget --help' for help.

        Error: Invalid value for '-j' / '--max-workers': 0 is not in the range 1<=x<=256.

    and give the exit code (2)."""
    import sys

    text = f"Usage: {USAGE}\nTry 'objget --help' for help.\n\nError: {exc}"
    print(text, file=sys.stderr, flush=True)
    return EXIT["usage"]


Convert = Callable[[str], Any]


class Entry:
    """What completion needs to know of an option (a plain class: no class to build at start,
    as a NamedTuple or a dataclass would)."""

    __slots__ = ("choices", "help", "is_file", "names", "optional", "takes_value")

    def __init__(
        self,
        names: tuple[str, ...],
        help: str,
        takes_value: bool,
        choices: tuple[str, ...] | None,
        is_file: bool,
        optional: bool,
    ) -> None:
        self.names, self.help, self.takes_value = names, help, takes_value
        self.choices, self.is_file, self.optional = choices, is_file, optional


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


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # what argparse would print and exit on
        raise UsageError(message[:1].upper() + message[1:] + ".")


class Parser:
    """The options of one command. `add` declares one; `parse` reads a command line."""

    def __init__(self, *, description: str, epilog: str) -> None:
        self._parser = _ArgumentParser(
            prog="objget", usage=USAGE, description=description, epilog=epilog,
            formatter_class=_Formatter, add_help=False, allow_abbrev=False, exit_on_error=False,
        )  # fmt: skip
        self._group = self._parser.add_argument_group("Options")
        self._values: dict[str, str] = {}  # option word -> its `--long` name (takes a value)
        self._flags: set[str] = set()  # long options without a value
        self._optional: dict[str, tuple[str, str, str | None]] = {}  # word -> (--long, if
        # no value follows, `only`)
        self._convert: dict[str, tuple[Convert, str]] = {}  # dest -> (converter, quoted names)
        self.entries: list[Entry] = []  # for completion

    def add(
        self,
        *names: str,
        help: str,  # argparse's name
        metavar: str | None = None,
        convert: Convert | None = None,
        dest: str | None = None,
        default: Any = None,
        action: str | None = None,
        optional: str | None = None,
        only: str | None = None,
    ) -> None:
        """An option. Without `metavar` it is a flag (or a counter: `action="count"`); with
        one it takes a value, converted by `convert` (whose ValueError is a usage error). An
        `optional` value is used when none follows (`--ray`); `only`: the one word taken as
        its value, else `optional` (`--request-payer`)."""
        choices = getattr(convert, "choices", None)
        self.entries.append(
            Entry(
                names,
                help,
                metavar is not None,
                choices,
                convert is existing_file,
                optional is not None,
            )
        )
        if metavar is None:
            act = action or "store_true"
            kind = self._group.add_argument(
                *names,
                action=act,
                dest=dest,
                help=help,
                **({} if default is None else {"default": default}),
            )
            self._flags.update(n for n in names if n.startswith("--"))
        else:
            kind = self._group.add_argument(
                *names, metavar=metavar, dest=dest, default=default, action=action or "store",
                help=help,
            )  # fmt: skip
            long = next(n for n in names if n.startswith("--"))
            for name in names:
                if optional is None:
                    self._values[name] = long
                else:
                    self._optional[name] = (long, optional, only)
        if convert is not None:
            label = " / ".join(f"'{n}'" for n in names[:2])
            self._convert[kind.dest] = (convert, label)

    @property
    def options(self) -> list[str]:
        """Every option word, in the help's order."""
        return [n for e in self.entries for n in e.names]

    def help(self) -> str:
        return self._parser.format_help()

    def tokens(self, argv: Sequence[str]) -> tuple[list[str], list[str]]:
        """(what argparse reads, the words after `--`): each option that takes a value as
        one `--long=value` word, as click took the words."""
        out: list[str] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if arg == "--":
                return out, list(argv[i + 1 :])
            name, eq, _ = arg.partition("=")
            if eq and name in self._flags:
                raise UsageError(f"Option '{name}' does not take a value.")
            if arg in self._values:
                if nxt is None:
                    raise UsageError(f"Option '{arg}' requires an argument.")
                out.append(f"{self._values[arg]}={nxt}")
                i += 2
                continue
            if arg in self._optional:
                long, missing, only = self._optional[arg]
                takes = nxt is not None and (nxt == only if only else not _option_like(nxt))
                out.append(f"{long}={nxt if takes else missing}")
                i += 2 if takes else 1
                continue
            out.append(arg)
            i += 1
        # argparse drops a value `--` (it takes it for the end of the options): in disguise
        return [w[:-2] + _DASHES if w.endswith("=--") and w[:2] == "--" else w for w in out], []

    def parse(self, argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
        """(the options, the positional words); a UsageError for what the command refuses.
        With `help` or `version` set, nothing else is checked."""
        words, after = self.tokens(argv)
        try:
            ns, extra = self._parser.parse_known_args(words)
        except argparse.ArgumentError as exc:
            raise UsageError(_argparse_message(exc)) from None
        unknown = [w for w in extra if _option_like(w)]
        if unknown:
            raise UsageError(self._no_such(unknown[0].partition("=")[0]))
        if ns.help or ns.version:
            return ns, []
        for dest, value in vars(ns).items():
            if value == _DASHES:
                setattr(ns, dest, "--")
            elif isinstance(value, list) and _DASHES in value:
                setattr(ns, dest, ["--" if v == _DASHES else v for v in value])
        for dest, (convert, label) in self._convert.items():
            raw = getattr(ns, dest)
            if isinstance(raw, str):
                try:
                    setattr(ns, dest, convert(raw))
                except ValueError as exc:
                    raise UsageError(f"Invalid value for {label}: {exc}") from None
        return ns, extra + after

    def _no_such(self, name: str) -> str:
        import difflib  # only on this error

        text = f"No such option '{name}'."
        close = difflib.get_close_matches(name, self.options)
        if len(close) == 1:
            text += f" (Did you mean '{close[0]}'?)"
        elif close:
            text += " (Did you mean one of: " + ", ".join(f"'{c}'" for c in sorted(close)) + "?)"
        return text


_DASHES = "\0--"  # no word of a command line holds a NUL


def _option_like(word: str) -> bool:
    return word.startswith("-") and len(word) > 1


def _argparse_message(exc: argparse.ArgumentError) -> str:
    """The errors argparse still finds after `tokens` (short options run together, `-qj`)."""
    names = " / ".join(f"'{n}'" for n in (exc.argument_name or "").split("/"))
    if exc.message.startswith("ignored explicit argument"):  # -qz: z is no option of ours
        letter = exc.message.split("'")[1][:1]
        return f"No such option '-{letter}'."
    if exc.message.startswith("expected"):
        return f"Option {names} requires an argument."
    return f"Invalid value for {names}: {exc.message}"


# --- value checks, in click's words (scripts may match them) ---------------------------------
class choice:  # a converter, named like the others
    """One of `choices`: `'x' is not one of 'a', 'b'.`"""

    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def __call__(self, value: str) -> str:
        if value in self.choices:
            return value
        if len(self.choices) == 1:
            raise ValueError(f"{value!r} is not {self.choices[0]!r}.")
        raise ValueError(f"{value!r} is not one of {', '.join(map(repr, self.choices))}.")


def int_range(low: int, high: int) -> Convert:
    """An integer in [low, high]: `0 is not in the range 1<=x<=256.`"""

    def convert(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a valid integer range.") from None
        if not low <= n <= high:
            raise ValueError(f"{n} is not in the range {low}<=x<={high}.")
        return n

    return convert


def number(kind: type[int] | type[float]) -> Convert:
    """An int or a float: `'x' is not a valid float.`"""
    word = "integer" if kind is int else "float"

    def convert(value: str) -> int | float:
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a valid {word}.") from None

    return convert


def existing_file(value: str) -> str:
    """A readable file that exists (not a directory), as given."""
    import os

    try:
        is_dir = os.path.isdir(value)
        os.stat(value)
    except OSError:
        raise ValueError(f"File {value!r} does not exist.") from None
    if is_dir:
        raise ValueError(f"File {value!r} is a directory.")
    if not os.access(value, os.R_OK):
        raise ValueError(f"File {value!r} is not readable.")
    return value
