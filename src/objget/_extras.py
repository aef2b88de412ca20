"""Optional extras: which `pip install 'objget[...]'` brings a module that is missing.

The backends import their SDKs lazily and raise an ImportError that already names the extra;
`missing_extra` also covers a bare ModuleNotFoundError from deeper down (a module of the
extra that is only imported later), and tells both from an ImportError that is a bug.
"""

from __future__ import annotations

__all__ = ["install_hint", "missing_extra"]

# top-level module -> the extra that installs it
_EXTRA_OF = {
    "botocore": "s3",
    "awscrt": "s3",
    "fastcrc": "oss",
    "oss2": "oss",
    "ray": "ray",
}


def missing_extra(exc: ImportError) -> str | None:
    """The message for an ImportError caused by a missing optional dependency (naming the
    extra to install), or None when the error is something else.

    >>> missing_extra(ModuleNotFoundError("No module named 'botocore'", name="botocore"))
    "botocore is not installed: pip install 'objget[s3]'"
    >>> missing_extra(ImportError("cannot import name 'x' from 'objget'")) is None
    True
    """
    text = str(exc)
    if "pip install 'objget[" in text:
        return text
    name = (exc.name or "").partition(".")[0]
    extra = _EXTRA_OF.get(name)
    if extra is None and isinstance(exc.__cause__, ImportError):
        return missing_extra(exc.__cause__)
    if extra is None:
        return None
    return f"{name} is not installed: pip install 'objget[{extra}]'"


def install_hint(exc: ImportError) -> str:
    """`missing_extra(exc)`; an ImportError that is not a missing extra is raised again (a
    bug keeps its traceback)."""
    message = missing_extra(exc)
    if message is None:
        raise exc
    return message
