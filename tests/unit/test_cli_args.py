"""The command line on argparse (`cli/_args.py`): the help's sections and options, the usage
errors (exit 2, click's words, one line naming the option), the words read as click read them,
and shell completion. In-process: `objget.cli.run(argv)` and the output captured."""

from __future__ import annotations

import re

import pytest

from objget.cli import parser, run

USAGE = "Usage: objget [OPTIONS] SOURCE [DEST]\nTry 'objget --help' for help.\n\nError: "
URL = "http://127.0.0.1:9/f.bin"  # port 9 (discard): a usage error asks nothing of it

# every option of the help, in its order, with its value's name
OPTIONS = [
    "-j, --max-workers N",
    "--part-size SIZE",
    "--limit-rate RATE",
    "--restart",
    "--skip-existing",
    "-H, --header 'NAME: VALUE'",
    "--checksum sha256:HEX",
    "--checksum-file SHA256SUMS",
    "--ca-bundle FILE",
    "-k, --insecure, --no-verify-tls",
    "--proxy URL",
    "--noproxy LIST",
    "--retries N",
    "--connect-timeout SECONDS",
    "--stall-timeout SECONDS",
    "--endpoint, --endpoint-url URL",
    "--region REGION",
    "--profile NAME",
    "--addressing-style [auto|path|virtual]",
    "--no-sign-request",
    "--signature-version [1|4]",
    "--version-id ID",
    "--request-payer [requester]",
    "--oss-traffic-limit BITS",
    "--sse-c-key-file FILE",
    "--verify [md5]",
    "-r, --recursive",
    "--manifest FILE",
    "--include GLOB",
    "--exclude GLOB",
    "--dry-run",
    "--ray ADDRESS",
    "--json",
    "-q, --quiet",
    "-v, --verbose",
    "--version",
    "-h, --help",
]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_has_the_sections_every_option_and_the_examples(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = _run(capsys, "--help")
    assert (code, err) == (0, "")
    assert out.startswith("Usage: objget [OPTIONS] SOURCE [DEST]\n\n  Download SOURCE (an http://")
    assert "\nOptions:\n" in out
    listed = [m.group(1) for m in re.finditer(r"^  (-\S.*?)(?:  +\S|$)", out, re.MULTILINE)]
    assert listed == OPTIONS
    for section in ("  Examples:\n", "  Interrupted (Ctrl-C", "  Exit codes: 0 ok, 2 usage",
                    "  Batches (see the batch docs):\n"):  # fmt: skip
        assert section in out
    # the epilog keeps its lines as written (argparse's RawDescriptionHelpFormatter)
    assert "\n    objget -j 32 --part-size 64M URL big.iso           # at most 32 streams" in out
    assert "\n    objget --recursive --ray auto s3://bucket/p/ DIR/ # on a Ray cluster\n" in out
    assert "`HEX  NAME`" in out  # help texts keep their double spaces
    words = " ".join(out.split())
    assert "(default 8)" in words and "1-256" in words and "(default auto)" in words
    options = out[out.index("\nOptions:\n") : out.index("  Examples:")]
    assert max(len(line) for line in options.splitlines()) <= 78  # wrapped as click wrapped
    assert _run(capsys, "-h")[1] == out
    assert _run(capsys, "-j", "0", "--help")[1] == out  # help wins over a bad value, as before


def test_version(capsys):
    code, out, _ = _run(capsys, "--version")
    assert code == 0
    assert re.fullmatch(r"objget, version \S+\n", out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["-j", "0", URL],
            "Invalid value for '-j' / '--max-workers': 0 is not in the range 1<=x<=256.",
        ),
        (
            ["--max-workers=257", URL],
            "Invalid value for '-j' / '--max-workers': 257 is not in the range 1<=x<=256.",
        ),
        (
            ["-jx", URL],
            "Invalid value for '-j' / '--max-workers': 'x' is not a valid integer range.",
        ),
        (
            ["--retries", "0", URL],
            "Invalid value for '--retries': 0 is not in the range 1<=x<=100.",
        ),
        (
            ["--connect-timeout", "x", URL],
            "Invalid value for '--connect-timeout': 'x' is not a valid float.",
        ),
        (
            ["--oss-traffic-limit", "1e6", URL],
            "Invalid value for '--oss-traffic-limit': '1e6' is not a valid integer.",
        ),
        (
            ["--part-size", "12Q", URL],
            "Invalid value for '--part-size': not a size: '12Q' (use e.g. 8M, 512K, 1G or a byte "
            "count)",
        ),
        (
            ["--addressing-style", "foo", URL],
            "Invalid value for '--addressing-style': 'foo' is not one of 'auto', 'path', "
            "'virtual'.",
        ),
        (
            ["--signature-version", "3", URL],
            "Invalid value for '--signature-version': '3' is not one of '1', '4'.",
        ),
        (
            ["--verify", "sha1", URL],
            "Invalid value for '--verify': 'sha1' is not 'md5'.",
        ),
        (
            ["--request-payer=me", URL],
            "Invalid value for '--request-payer': 'me' is not 'requester'.",
        ),
        (
            ["--manifest", "{tmp}/none.txt", "out"],
            "Invalid value for '--manifest': File '{tmp}/none.txt' does not exist.",
        ),
        (
            ["--ca-bundle", "{tmp}", URL],
            "Invalid value for '--ca-bundle': File '{tmp}' is a directory.",
        ),
        (
            ["--no-such", URL],
            "No such option '--no-such'.",
        ),
        (
            ["--insec", URL],
            "No such option '--insec'. (Did you mean one of: '--include', '--insecure'?)",
        ),
        (
            ["--max-work=3", URL],
            "No such option '--max-work'. (Did you mean '--max-workers'?)",
        ),
        (
            ["-qz", URL],
            "No such option '-z'.",
        ),
        (
            ["--restart=yes", URL],
            "Option '--restart' does not take a value.",
        ),
        (
            ["--verbose=2", URL],
            "Option '--verbose' does not take a value.",
        ),
        (
            [URL, "-j"],
            "Option '-j' requires an argument.",
        ),
        (
            ["-qj"],
            "Option '-j' / '--max-workers' requires an argument.",
        ),
        (
            [],
            "Missing argument 'SOURCE'.",
        ),
        (
            ["-q", "--json"],
            "Missing argument 'SOURCE'.",
        ),
        (
            [URL, "a", "b"],
            "Got unexpected extra argument (b)",
        ),
        (
            [URL, "a", "b", "c"],
            "Got unexpected extra arguments (b c)",
        ),
        (
            ["--checksum", "bad", URL],
            "checksum must look like sha256:<64 hex digits>",
        ),
        (
            ["--recursive", "http://127.0.0.1:9/p/", "-"],
            "DEST - (stdout) takes one object; a batch needs a directory",
        ),
        (
            ["--skip-existing", URL, "-"],
            "--skip-existing needs a file to compare with, not DEST -",
        ),
        (
            ["-H", "X-A: 1", "s3://bucket/key"],
            "--header applies to http:// and https:// sources only (oss:// and s3:// requests "
            "are signed: use their own options)",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line_naming_the_option(capsys, tmp_path, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err == USAGE + message.format(tmp=tmp_path) + "\n"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_words_are_read_as_click_read_them():
    p = parser()

    def parse(*argv: str):
        return p.parse(list(argv))

    ns, words = parse(URL, "-q", "out")  # options between SOURCE and DEST
    assert (words, ns.quiet) == ([URL, "out"], True)
    ns, words = parse("-H", "-x: 1", "--header", "--", URL)  # a value is the next word, always
    assert (ns.header, words) == (["-x: 1", "--"], [URL])
    assert parse("--region=--", "--version-id", "--", URL)[0].version_id == "--"
    ns, words = parse("--ray", "auto", "s3://b/p/", "d")
    assert (ns.ray_address, words) == ("auto", ["s3://b/p/", "d"])
    ns, words = parse("--ray", "-r", "s3://b/p/")  # no value: a local Ray instance
    assert (ns.ray_address, ns.recursive, words) == ("local", True, ["s3://b/p/"])
    assert parse("s3://b/p/", "--ray")[0].ray_address == "local"
    ns, words = parse(URL, "--", "-q")  # after --, words only
    assert (ns.quiet, words) == (False, [URL, "-q"])
    ns, words = parse("-vv", "-qv", URL, "-")
    assert (ns.verbose, ns.quiet, words) == (3, True, [URL, "-"])
    ns, _ = parse("--include", "a/*", "--include=b", "--exclude", "c", URL)
    assert (ns.include, ns.exclude) == (["a/*", "b"], ["c"])
    ns, _ = parse("-j8", "--part-size", "64M", "--limit-rate=1.5k", "--connect-timeout", "2.5", URL)
    assert (ns.max_workers, ns.part_size, ns.limit_rate) == (8, 64 << 20, 1536)
    assert ns.connect_timeout == 2.5
    ns, _ = parse("-k", "--endpoint-url", "http://e", "--request-payer", URL)
    assert (ns.no_verify_tls, ns.endpoint, ns.request_payer) == (True, "http://e", "requester")
    ns, _ = parse(URL)  # the defaults
    assert (ns.max_workers, ns.retries, ns.connect_timeout, ns.stall_timeout) == (
        None,
        8,
        10.0,
        30.0,
    )
    assert (ns.addressing_style, ns.signature_version, ns.verbose) == ("auto", "4", 0)
    assert (ns.header, ns.request_payer, ns.ray_address, ns.proxy) == ([], None, None, None)


def test_proxy_from_a_file(tmp_path):
    secret = tmp_path / "proxy.txt"
    secret.write_text("# the proxy\nhttp://user:pw@127.0.0.1:3128\n")
    ns, _ = parser().parse(["--proxy", f"@{secret}", URL])
    assert ns.proxy == "http://user:pw@127.0.0.1:3128"
    assert parser().parse(["--proxy", "", URL])[0].proxy == ""


# --- completion ----------------------------------------------------------------------------------
def _complete(capsys, monkeypatch, shell: str, words: str, cword: str) -> str:
    monkeypatch.setenv("_OBJGET_COMPLETE", f"{shell}_complete")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", cword)
    code, out, err = _run(capsys)
    assert (code, err) == (0, "")
    return out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(capsys, monkeypatch, shell):
    monkeypatch.setenv("_OBJGET_COMPLETE", f"{shell}_source")
    code, out, _ = _run(capsys)
    assert code == 0
    assert "_objget_completion" in out and f"_OBJGET_COMPLETE={shell}_complete" in out


def test_completion_of_options_choices_and_files(capsys, monkeypatch):
    out = _complete(capsys, monkeypatch, "bash", "objget --skip", "1")
    assert out == "plain,--skip-existing\n"
    out = _complete(capsys, monkeypatch, "bash", "objget -q --addressing-style ", "3")
    assert out.split() == ["plain,auto", "plain,path", "plain,virtual"]
    out = _complete(capsys, monkeypatch, "bash", "objget --signature-version 4", "2")
    assert out == "plain,4\n"
    assert _complete(capsys, monkeypatch, "bash", "objget --manifest li", "2") == "file,li\n"
    assert _complete(capsys, monkeypatch, "bash", "objget s3://b/k ", "2") == "file,\n"
    assert _complete(capsys, monkeypatch, "bash", "objget --region ", "2") == "\n"  # free text
    out = _complete(capsys, monkeypatch, "zsh", "objget --no-s", "1")
    assert out == "plain\n--no-sign-request\nAnonymous access (public buckets)\n"
    out = _complete(capsys, monkeypatch, "fish", "objget -q --verify m", "m")
    assert out == "plain,md5\n"
    monkeypatch.setenv("_OBJGET_COMPLETE", "tcsh_source")
    assert run([]) == 1


# --- the reading argparse used to do (`Parser.parse`) ----------------------------------------
def _parse(*argv: str):
    return parser().parse(list(argv))


def test_short_options_run_together():
    ns, words = _parse("-kqv", URL)
    assert (ns.no_verify_tls, ns.quiet, ns.verbose, words) == (True, True, 1, [URL])
    for argv in (["-j8"], ["-j", "8"], ["-j=8"], ["-qj8"], ["-qj", "8"], ["--max-workers=8"]):
        ns, words = _parse(*argv, URL)
        assert (ns.max_workers, words) == (8, [URL]), argv
    ns, _ = _parse("-vqvj4", URL)  # flags, a counter and a value in one word
    assert (ns.verbose, ns.quiet, ns.max_workers) == (2, True, 4)
    ns, _ = _parse("-qH", "X-A: 1", "-HX-B: 2", URL)
    assert ns.header == ["X-A: 1", "X-B: 2"]
    ns, _ = _parse("-qH", "-x: 1", URL)  # a word with a space is a value, as argparse read it
    assert ns.header == ["-x: 1"]
    ns, _ = _parse("-q=v", URL)  # argparse's reading: `=v` continues the cluster
    assert (ns.quiet, ns.verbose) == (True, 1)


def test_an_empty_value_after_equals():
    ns, _ = _parse("--header=", "--ray=", "--region=", URL)
    assert (ns.header, ns.ray_address, ns.region) == ([""], "", "")


def test_repeated_options():
    ns, _ = _parse("-j", "2", "--max-workers", "4", URL)  # the last value wins
    assert ns.max_workers == 4
    assert _parse("-j", "0", "-j", "4", URL)[0].max_workers == 4  # only that one is checked
    ns, _ = _parse("-q", "--quiet", "-vv", "--verbose", "-v", URL)
    assert (ns.quiet, ns.verbose) == (True, 4)
    ns, _ = _parse("--include", "a", "--include=b", "--exclude", "c", "--exclude", "c", URL)
    assert (ns.include, ns.exclude) == (["a", "b"], ["c", "c"])
    assert _parse(URL)[0].include == [] and parser().parse([URL])[0].include == []  # fresh lists


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-xq", URL], "No such option '-xq'. (Did you mean '-q'?)"),  # the whole word
        (["-qz", "-x", URL], "No such option '-z'."),
        (["--nope", "-qz", URL], "No such option '-z'."),  # as argparse: the cluster's first
        (["--nope", "--json=1", URL], "Option '--json' does not take a value."),
        # click's errors first wherever they stand, then argparse's first, then unknown ones
        (["-qz", "--json=1", URL], "Option '--json' does not take a value."),
        (["-qj", "-x", URL, "-H"], "Option '-H' requires an argument."),
        (["--nope", "-qz", "-qj"], "No such option '-z'."),
        (["-5", URL], "No such option '-5'."),
        (["-q=", URL], "No such option '-'."),
        (["-qj", "-x", URL], "Option '-j' / '--max-workers' requires an argument."),
        (["-qj", "--", URL], "Option '-j' / '--max-workers' requires an argument."),
        (["-qj", "-5", URL], "Invalid value for '-j' / '--max-workers': -5 is not in the range "
                             "1<=x<=256."),  # fmt: skip
        (["-qj", "-.5", URL], "Invalid value for '-j' / '--max-workers': '-.5' is not a valid "
                              "integer range."),  # fmt: skip
        (["--part-size=", URL], "Invalid value for '--part-size': not a size: '' (use e.g. 8M, "
                                "512K, 1G or a byte count)"),  # fmt: skip
        (["--retries", "0", "-j", "0", URL],  # values are checked in the help's order
         "Invalid value for '-j' / '--max-workers': 0 is not in the range 1<=x<=256."),
    ],
)  # fmt: skip
def test_usage_errors_of_the_reading(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert (code, out, err) == (2, "", USAGE + message + "\n")


def test_a_value_dashes_before_the_end_of_the_options():
    """`--` as an option's value, then `--`: the value stays `--` (argparse took a value
    `--` for its own end of options and dropped it, leaving `[]`)."""
    ns, words = _parse("--include", "--", "--", "-H")
    assert (ns.include, words) == (["--"], ["-H"])
    ns, words = _parse("--proxy", "--", "--", URL)
    assert (ns.proxy, words) == ("--", [URL])
    ns, _ = _parse("--region=--", "--help")  # help: the raw values, as given
    assert ns.region == "--"
