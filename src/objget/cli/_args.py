"""The command line's grammar: options, their values and the usage errors, read without
argparse (the help text is argparse's: `_help.py`, built from the same declarations).

Why not click (DESIGN.md named it), nor argparse at run time: at 8 MiB the whole command is
its start-up. click brought `uuid` -> `platform`, its own ten modules, and `inspect` and
`datetime`; argparse cost ~5 M instructions to import, ~3 M to declare the 37 options and
~4 M for `locale` (its `gettext` look-ups), against ~0.3 M to read a command line. So
`Parser.add` records each option once (`Entry`), `Parser.parse` reads the words itself, and
argparse is imported only to print `--help` (docs/architecture.md, Start-up). The user sees
the same command: the same options and defaults, click's usage errors word for word (scripts
may match them), and its shell completion protocol (`_complete.py`).

The words are read in one pass, as click and argparse read them together: an option named in
full that takes a value takes the next word whatever it looks like (`-H -x` is a header
`-x`, click's reading), `--ray` takes one unless an option follows, `--request-payer` takes
only `requester`, and `--` ends the options; the rest as argparse read it: flags, counters
(`-vv`), repeated options (the last value wins; `append` ones collect), `--name=value`, short
clusters (`-qv`, `-j8`, `-qj 8`), unknown options (click's "No such option" with a
did-you-mean); SOURCE and DEST are the words left over. Which usage error is reported when
there are several is theirs too: click's (a flag given `=value`, a last option without its
value) first, then argparse's (a cluster's), then the first unknown option. Values stay
strings while the words are read; they are checked and converted afterwards, so `--help`
wins over a bad value, as it did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

from .._exit import EXIT

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from typing import Any

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


Convert = Callable[[str], "Any"]


class Entry:
    """One option, as declared: what parsing, the help and completion read (a plain class: no
    class to build at start, as a NamedTuple or a dataclass would). `action` is argparse's
    word: `store_true`, `count`, `store` or `append`."""

    __slots__ = ("action", "convert", "default", "dest", "help", "long", "metavar", "names",
                 "only", "optional")  # fmt: skip

    def __init__(
        self,
        names: tuple[str, ...],
        *,
        help: str,
        action: str,
        dest: str,
        default: Any,
        metavar: str | None,
        convert: Convert | None,
        optional: str | None,
        only: str | None,
    ) -> None:
        self.names, self.help, self.action, self.dest = names, help, action, dest
        self.default, self.metavar, self.convert = default, metavar, convert
        self.optional, self.only = optional, only
        # the first `--long` name: the source of argparse's dest
        self.long = next((n for n in names if n.startswith("--")), names[0])

    @property
    def takes_value(self) -> bool:
        return self.metavar is not None

    @property
    def choices(self) -> tuple[str, ...] | None:
        found: tuple[str, ...] | None = getattr(self.convert, "choices", None)
        return found

    @property
    def is_file(self) -> bool:
        return self.convert is existing_file


class Parser:
    """The options of one command. `add` declares one; `parse` reads a command line; `help`
    renders the help text."""

    def __init__(self, *, description: str, epilog: str) -> None:
        self.description, self.epilog = description, epilog
        self.entries: list[Entry] = []  # in the help's order
        self._by_name: dict[str, Entry] = {}  # every option word -> its entry

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
        one it takes a value, converted by `convert` (whose ValueError is a usage error);
        `action="append"` collects every value. An `optional` value is used when none
        follows (`--ray`); `only`: the one word taken as its value, else `optional`
        (`--request-payer`)."""
        if metavar is None:
            action = action or "store_true"
            if default is None and action == "store_true":
                default = False
        else:
            action = action or "store"
        entry = Entry(names, help=help, action=action, dest=dest or "", default=default,
                      metavar=metavar, convert=convert, optional=optional, only=only)  # fmt: skip
        if dest is None:  # as argparse names it: from the first long name, else the first
            entry.dest = entry.long.lstrip("-").replace("-", "_")
        self.entries.append(entry)
        for name in names:
            self._by_name[name] = entry

    @property
    def options(self) -> list[str]:
        """Every option word, in the help's order."""
        return [n for e in self.entries for n in e.names]

    def help(self) -> str:
        """The help text (argparse's layout: the only use of argparse)."""
        from ._help import render

        return render(self)

    def parse(self, argv: Sequence[str]) -> tuple[SimpleNamespace, list[str]]:
        """(the options, one attribute each, and the positional words); a UsageError for
        what the command refuses. With `help` or `version` set, nothing else is checked."""
        values = {e.dest: list(e.default) if e.action == "append" else e.default
                  for e in self.entries}  # fmt: skip
        positional: list[str] = []
        unknown: str | None = None  # the first; reported once every word is read
        later: UsageError | None = None  # argparse's first: reported after click's
        by_name = self._by_name
        i = 0
        while i < len(argv):
            word = argv[i]
            i += 1
            if word == "--":
                positional += argv[i:]
                break
            if not _option_like(word):
                positional.append(word)
                continue
            entry = by_name.get(word)
            if entry is not None and entry.takes_value:  # click's reading of the next word
                i = self._take(values, entry, word, argv, i)
                continue
            name, eq, _ = word.partition("=")
            flag = by_name.get(name) if eq and name[:2] == "--" else None
            if flag is not None and not flag.takes_value:
                raise UsageError(f"Option '{name}' does not take a value.")
            found = self._option(word)
            if found is None:
                unknown = unknown or name
                continue
            try:
                i = self._read(values, found, argv, i)
            except UsageError as exc:  # the next word is read as click read it
                later = later or exc
        if later is not None:
            raise later
        if unknown is not None:
            raise UsageError(self._no_such(unknown))
        ns = SimpleNamespace(**values)
        if ns.help or ns.version:
            return ns, []
        for entry in self.entries:
            raw = values[entry.dest]
            if entry.convert is not None and isinstance(raw, str):
                try:
                    setattr(ns, entry.dest, entry.convert(raw))
                except ValueError as exc:
                    label = " / ".join(f"'{n}'" for n in entry.names[:2])
                    raise UsageError(f"Invalid value for {label}: {exc}") from None
        return ns, positional

    def _take(
        self, values: dict[str, Any], entry: Entry, word: str, argv: Sequence[str], i: int
    ) -> int:
        """Record `entry`, named in full by `word`, with its value as click took it (the next
        word; an optional value's only when it fits); the index of the next word to read."""
        nxt = argv[i] if i < len(argv) else None
        if entry.optional is None:
            if nxt is None:
                raise UsageError(f"Option '{word}' requires an argument.")
            _set(values, entry, nxt)
            return i + 1
        only = entry.only
        takes = nxt is not None and (nxt == only if only else not _option_like(nxt))
        _set(values, entry, nxt if takes else entry.optional)
        return i + 1 if takes else i

    def _read(
        self, values: dict[str, Any], found: tuple[Entry, str | None], words: Sequence[str], i: int
    ) -> int:
        """Record the option `found` (with its attached text) and, in a cluster, the ones
        after it (`-qv`, `-qj8`); the index of the next word to read."""
        entry, attached = found
        while not entry.takes_value:
            _set(values, entry, None)
            if attached is None:
                return i
            letter = attached[:1]  # `-q=` has none: argparse's "-" was its message
            following = self._by_name.get(f"-{letter}") if letter else None
            if following is None:
                raise UsageError(f"No such option '-{letter}'.")
            entry, attached = following, attached[1:] or None
        if attached is None:  # `-qj`: the next word, unless it reads as an option
            if i == len(words) or not self._is_value(words[i]):
                names = " / ".join(f"'{n}'" for n in entry.names)
                raise UsageError(f"Option {names} requires an argument.")
            attached = words[i]
            i += 1
        _set(values, entry, attached)
        return i

    def _is_value(self, word: str) -> bool:
        """Whether argparse read `word` as a value, not an option: a word without a leading
        `-`, `-`, a negative number, or an unknown `-...` with a space in it."""
        if not _option_like(word):
            return True
        if self._option(word) is not None:
            return False
        return " " in word or _negative_number(word)

    def _option(self, word: str) -> tuple[Entry, str | None] | None:
        """(the option `word` names, the text attached to it: `--name=TEXT`, `-jTEXT`,
        `-qTEXT`), or None for a word that names none."""
        if not _option_like(word):
            return None
        by_name = self._by_name
        entry = by_name.get(word)
        if entry is not None:
            return entry, None
        name, eq, text = word.partition("=")
        if eq and name in by_name:
            return by_name[name], text
        if word[1] != "-" and word[:2] in by_name:
            return by_name[word[:2]], word[2:]
        return None

    def _no_such(self, name: str) -> str:
        import difflib  # only on this error

        text = f"No such option '{name}'."
        close = difflib.get_close_matches(name, self.options)
        if len(close) == 1:
            text += f" (Did you mean '{close[0]}'?)"
        elif close:
            text += " (Did you mean one of: " + ", ".join(f"'{c}'" for c in sorted(close)) + "?)"
        return text


def _set(values: dict[str, Any], entry: Entry, value: str | None) -> None:
    """Record one occurrence of `entry` (with its value, if it takes one)."""
    action, dest = entry.action, entry.dest
    if action == "append":
        values[dest].append(value)
    elif action == "count":
        values[dest] = (values[dest] or 0) + 1
    elif action == "store_true":
        values[dest] = True
    else:
        values[dest] = value


def _option_like(word: str) -> bool:
    return word.startswith("-") and len(word) > 1


def _negative_number(word: str) -> bool:
    """`-5`, `-1.5`, `-.5` (argparse's pattern)."""
    whole, dot, fraction = word[1:].partition(".")
    if not dot:
        return whole.isdecimal()
    return (whole == "" or whole.isdecimal()) and fraction.isdecimal()


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
