"""repr() and str() of every object reachable from a root, for the secret searches.

objget's own objects (and the plain dicts, lists, tuples and sets they hold) are walked
through their attributes and slots. A container type of its own (objget's `SecretHeaders`, a
namedtuple) is shown by its repr, not walked into, and so is an object of another library
(botocore's credentials, urllib3's pools): its internals are that library's business, and
some hold `os.environ`. Strings and numbers are not shown: a secret *is* a string, held where
it must be; what may never show it is the repr or str of whatever holds it.
"""

from __future__ import annotations

import inspect

__all__ = ["reprs"]

_ATOMS = (str, bytes, bytearray, memoryview, int, float, complex, bool, type(None), type)


def _children(obj: object) -> list[object]:
    if type(obj) is dict:
        return [*obj.keys(), *obj.values()]
    if type(obj) in (list, tuple, set, frozenset):
        return list(obj)  # type: ignore[call-overload]
    if isinstance(obj, (dict, list, tuple, set, frozenset)):
        return []  # a container type of its own (SecretHeaders, a namedtuple): its repr speaks
    if not (type(obj).__module__ or "").startswith("objget"):
        return []
    out = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
    for cls in type(obj).__mro__:
        slots = getattr(cls, "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            out.append(getattr(obj, name, None))
    return out


def reprs(root: object, limit: int = 50_000) -> str:
    """The repr and str of `root` and of everything reachable from it (see the module)."""
    out: list[str] = []
    seen: set[int] = set()
    todo = [root]
    while todo and len(seen) < limit:
        obj = todo.pop()
        if isinstance(obj, _ATOMS) or inspect.isroutine(obj) or id(obj) in seen:
            continue
        seen.add(id(obj))
        for show in (repr, str):
            try:
                out.append(show(obj))
            except Exception as exc:  # noqa: BLE001 - a failing repr is shown, not fatal
                out.append(f"<{show.__name__} failed: {exc.__class__.__name__}>")
        todo.extend(_children(obj))
    return "\n".join(out)
