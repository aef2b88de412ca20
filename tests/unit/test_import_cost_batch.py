"""Start-up cost guard for the batch command (`test_import_cost.py` holds the helpers): what a
`--recursive` run of one object and a `--manifest` run must not load, each counted with
callgrind by `python -m bench.startup_count --batch` (issue 16):

- `xml` (ElementTree, expat; ~11 M) in a `--manifest` run: only a listing parses XML;
- `json` (~5 M): only for `--json` and JSON manifest lines;
- `sqlite3.dbapi2` and `datetime` (~7 M): the journal connects through `_sqlite3`;
- `objget._progress` (a frozen dataclass, ~5 M): only with a download's listener.

Module sets in a fresh interpreter, not timings.
"""

from __future__ import annotations

import hashlib
import os

from .test_import_cost import PROXY_VARIABLES, _child, _matching, _run_ok, _served

NEVER = ("json", "sqlite3", "datetime", "objget._progress")
XML = ("xml", "pyexpat", "_elementtree")
BODY = b"s" * 5000
ETAG = hashlib.md5(BODY).hexdigest()  # noqa: S324 - an S3 ETag


def _s3_served(directory: object, body: str) -> str:
    """A script serving ListObjectsV2 (`GET /bucket/?list-type=2...`: the one object
    `one/a.bin`) and the object over plain HTTP on 127.0.0.1 (`endpoint`) while it runs
    `body`; `_socket` only, as `_served`."""
    page = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws'
        '.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>one/</Prefix><IsTruncated>false'
        "</IsTruncated><EncodingType>url</EncodingType><Contents><Key>one%2Fa.bin</Key>"
        f"<ETag>&#34;{ETAG}&#34;</ETag><Size>{len(BODY)}</Size><LastModified>"
        "2024-01-01T00:00:00.000Z</LastModified></Contents></ListBucketResult>"
    )
    script = _served(directory, body)
    # the listing's answer, where the file server would look for a file named by the query
    (line,) = [s for s in script.splitlines() if s.strip().startswith("name = os.path.join(")]
    pad = line[: len(line) - len(line.lstrip())]
    listing = os.path.join(str(directory), "listing.xml")
    script = script.replace(
        line,
        f"{pad}if b'?list-type=2' in path:\n{pad}    name = {listing!r}\n"
        f"{pad}else:\n{pad}    {line.strip()}",
    )
    with open(os.path.join(str(directory), "listing.xml"), "w") as f:
        f.write(page)
    return script


def _batch_loaded(tmp_path: object, argv: str, written: str = "a.bin") -> list[str]:
    from pathlib import Path

    tmp = Path(str(tmp_path))
    (tmp / "bucket" / "one").mkdir(parents=True)
    (tmp / "bucket" / "one" / "a.bin").write_bytes(BODY)
    (tmp / "out").mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in PROXY_VARIABLES and not k.startswith("AWS_")
    }
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp / "none")
    code = _run_ok(tmp, argv, _s3_served)
    loaded: list[str] = _child(code, "sorted(_sys.modules)", env)
    assert (tmp / "out" / written).read_bytes() == BODY
    assert "objget.many._batch_run" in loaded
    return loaded


S3 = '"-q", "--no-sign-request", "--addressing-style", "path", "--endpoint-url", url_of("")'


def test_a_recursive_batch_loads_no_json_dbapi_or_progress(tmp_path):
    loaded = _batch_loaded(tmp_path, f'[{S3}, "--recursive", "s3://bucket/one/", out]')
    assert "objget.backends._s3_list" in loaded
    assert _matching(loaded, NEVER) == []


def test_a_manifest_batch_loads_no_xml_json_dbapi_or_progress(tmp_path):
    manifest = tmp_path / "list.txt"
    manifest.write_text("s3://bucket/one/a.bin\n")
    loaded = _batch_loaded(tmp_path, f"[{S3}, '--manifest', {str(manifest)!r}, out]", "one/a.bin")
    assert _matching(loaded, NEVER + XML) == []
