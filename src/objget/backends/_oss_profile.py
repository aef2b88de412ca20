"""ossutil's configuration file, read as ossutil reads it, for `oss://` sources.

The file is `OSSUTIL_CONFIG_FILE`, else `~/.ossutilconfig`: INI, section and key names
case-insensitive, `-` and `_` in key names ignored (`accessKeyID`, `access-key-id` and
`access_key_id` are one key).

- ossutil 2.x: `[default]` (also spelled `[profile default]`) and `[profile NAME]`, chosen
  with `--profile NAME`; keys `accessKeyId`, `accessKeySecret`, `stsToken` (or
  `securityToken`), `region`, `endpoint`.
- ossutil 1.x: one `[Credentials]` section with `accessKeyID`, `accessKeySecret`, `stsToken`,
  `endpoint` (and `language`, ignored); used when there is no `[default]` section.

Only key pairs and STS tokens are read from it; a profile whose `mode` asks for something
else (a RAM role, the ECS role, ...) is an error that says to use the Alibaba Cloud credential
chain for that. Nothing read here (no value, no line of the file) ever appears in a message.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["OssProfile", "config_path", "read_profile"]

_STATIC_MODES = frozenset({"", "ak", "accesskey", "ststoken", "sts"})


@dataclass(frozen=True, kw_only=True, slots=True)
class OssProfile:
    """One profile of the file. `where` names the file and section (for messages)."""

    where: str
    access_key_id: str | None = None
    access_key_secret: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    region: str | None = None
    endpoint: str | None = None


def config_path() -> Path:
    """`OSSUTIL_CONFIG_FILE`, else `~/.ossutilconfig`."""
    named = os.environ.get("OSSUTIL_CONFIG_FILE")
    return Path(named).expanduser() if named else Path.home() / ".ossutilconfig"


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _load(path: Path) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser(strict=False, default_section="\x00none")
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None
    except configparser.Error as exc:  # the message would quote the file's lines: not shown
        line = getattr(exc, "lineno", None)
        at = f" at line {line}" if line else ""
        raise ValueError(
            f"cannot read the ossutil config file {path}: {exc.__class__.__name__}{at}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"cannot read the ossutil config file {path}: {exc.__class__.__name__}"
        ) from None
    return parser


def _section(parser: configparser.RawConfigParser, profile: str | None) -> str | None:
    by_name = {" ".join(s.lower().split()): s for s in parser.sections()}
    if profile is None or profile.lower() == "default":
        for wanted in ("default", "profile default", "credentials"):
            if wanted in by_name:
                return by_name[wanted]
        return None
    return by_name.get(f"profile {profile.lower()}")


def read_profile(profile: str | None) -> OssProfile | None:
    """The named profile (None: the default one) from ossutil's config file; None when the
    file or the default profile does not exist. A named profile that is not there, an
    unreadable file or an unsupported `mode` is a ValueError (a usage error, exit 2, as an
    AWS profile that is not there is for s3://)."""
    path = config_path()
    parser = _load(path)
    section = None if parser is None else _section(parser, profile)
    if parser is None or section is None:
        if profile is not None and profile.lower() != "default":
            why = "has no such profile" if parser is not None else "does not exist"
            raise ValueError(
                f"ossutil profile {profile!r} not found: {path} {why} "
                f"(expected a [profile {profile}] section)"
            )
        return None
    values = {_norm(k): v.strip() for k, v in parser.items(section)}
    where = f"ossutil config {path} [{section}]"
    mode = _norm(values.get("mode", ""))
    if mode not in _STATIC_MODES:
        raise ValueError(
            f"{where}: mode {values['mode']!r} is not read by objget (only access keys and STS "
            "tokens are); configure it in the Alibaba Cloud credential chain instead "
            "(~/.aliyun/config.json or ~/.alibabacloud/credentials)"
        )
    token = values.get("ststoken") or values.get("securitytoken") or values.get("sessiontoken")
    return OssProfile(
        where=where,
        access_key_id=values.get("accesskeyid") or None,
        access_key_secret=values.get("accesskeysecret") or None,
        security_token=token or None,
        region=values.get("region") or None,
        endpoint=values.get("endpoint") or None,
    )
