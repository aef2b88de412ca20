"""Shell completion: `_OBJGET_COMPLETE=bash_source objget` prints a script for the shell (also
`zsh_source`, `fish_source`); the script asks the command for completions on every Tab with
`_OBJGET_COMPLETE=bash_complete` (`zsh_complete`, `fish_complete`) and the words typed so far in
`COMP_WORDS` and `COMP_CWORD`.

The variables and the answer's form are those the command used when it was built on click
(lines `TYPE,VALUE`; for zsh `TYPE`, `VALUE`, `HELP` lines), so a script saved from an earlier
version keeps working. What is completed: option names after `-`, the values of options with
a fixed set of choices, file names for options that take a file and for SOURCE and DEST.
"""

from __future__ import annotations

import os
import shlex

from ._args import Entry, Parser

__all__ = ["complete"]

_BASH = """\
_objget_completion() {
    local IFS=$'\\n' line kind value
    COMPREPLY=()
    for line in $(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD \\
            _OBJGET_COMPLETE=bash_complete "$1"); do
        kind=${line%%,*}
        value=${line#*,}
        case $kind in
            plain) COMPREPLY+=("$value") ;;
            file) compopt -o default ;;
        esac
    done
    return 0
}
complete -o nosort -F _objget_completion objget
"""

_ZSH = """\
#compdef objget
_objget_completion() {
    local -a plain described reply
    local kind value text
    reply=("${(@f)$(env COMP_WORDS="${words[*]}" COMP_CWORD=$((CURRENT-1)) \\
        _OBJGET_COMPLETE=zsh_complete objget)}")
    for kind value text in $reply; do
        case $kind in
            plain) if [[ $text == _ ]]; then plain+=("$value");
                   else described+=("$value:$text"); fi ;;
            file) _path_files -f ;;
        esac
    done
    (( $#described )) && _describe -V unsorted described -U
    (( $#plain )) && compadd -U -V unsorted -a plain
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _objget_completion "$@"
else
    compdef _objget_completion objget
fi
"""

_FISH = """\
function _objget_completion
    set -l reply (env _OBJGET_COMPLETE=fish_complete COMP_WORDS=(commandline -cp) \\
        COMP_CWORD=(commandline -t) objget)
    for line in $reply
        set -l part (string split -m 1 "," -- $line)
        switch $part[1]
            case plain
                echo $part[2]
            case file
                __fish_complete_path $part[2]
        end
    end
end
complete --no-files --command objget --arguments "(_objget_completion)"
"""

_SCRIPTS = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}


def complete(p: Parser, instruction: str) -> int:
    """Answer `_OBJGET_COMPLETE=instruction`: print a script or the completions; the exit
    code (1 for an instruction this command does not know)."""
    shell, _, what = instruction.partition("_")
    if shell not in _SCRIPTS or what not in ("source", "complete"):
        return 1
    if what == "source":
        print(_SCRIPTS[shell], end="", flush=True)
        return 0
    words = _split(os.environ.get("COMP_WORDS", ""))
    if shell == "fish":  # the whole line up to the cursor, and the word under it
        current = os.environ.get("COMP_CWORD", "")
        incomplete = _split(current)[0] if current.strip() else ""
        args = words[1:]
        if incomplete and args and args[-1] == incomplete:
            args.pop()
    else:
        try:
            cword = int(os.environ.get("COMP_CWORD", ""))
        except ValueError:
            return 1
        args = words[1:cword]
        incomplete = words[cword] if cword < len(words) else ""
    items = candidates(p, args, incomplete)
    if shell == "zsh":
        lines = [f"{kind}\n{value}\n{text or '_'}" for kind, value, text in items]
    else:
        lines = [f"{kind},{value}" for kind, value, _ in items]
    print("\n".join(lines), flush=True)
    return 0


def candidates(p: Parser, args: list[str], incomplete: str) -> list[tuple[str, str, str]]:
    """(kind, value, help) for the word being typed after `args`: kind `plain` (a value to
    offer) or `file` (let the shell complete a path)."""
    by_name = {name: e for e in p.entries for name in e.names}
    previous = by_name.get(args[-1]) if args and "--" not in args else None
    if previous is not None and previous.takes_value:
        values = _values(previous, incomplete)
        if values or not previous.optional:  # `--ray` may be followed by SOURCE
            return values
    if incomplete.startswith("-") and "--" not in args:
        return [
            ("plain", name, _first_sentence(e))
            for e in p.entries
            for name in e.names
            if name.startswith(incomplete)
        ]
    return [("file", incomplete, "")]


def _values(e: Entry, incomplete: str) -> list[tuple[str, str, str]]:
    if e.choices is not None:
        return [("plain", c, "") for c in e.choices if c.startswith(incomplete)]
    return [("file", incomplete, "")] if e.is_file else []


def _first_sentence(e: Entry) -> str:
    return e.help.split(". ")[0].rstrip(".")


def _split(line: str) -> list[str]:
    """The shell's words; an unclosed quote (a word being typed) is closed first."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    out: list[str] = []
    try:
        for word in lexer:
            out.append(word)
    except ValueError:  # no closing quotation: the rest is the word being typed
        out.append(lexer.token)
    return out
