"""The library's logger, without importing `logging` until someone can be listening.

Every library module logs through `log` (`from objget._log import log`): `log.warning(...)`,
`log.info(...)`, `log.debug(...)` and the `log.isEnabledFor(DEBUG)` guard, with the arguments
of `logging.Logger`'s methods (%-style, formatted only if a handler takes the record).

Until some code has imported `logging`, nobody can have configured a handler, so a record
would be dropped (objget's logger has a `NullHandler`, so not even `logging.lastResort` would
print it): each call is then one `sys.modules` lookup and nothing else, and the import of
`logging` (with `traceback`, `string`, `weakref`...: ~18 M instructions) stays out of a plain
download. Once `logging` is loaded, the first call binds `logging.getLogger("objget")`, gives it
its `NullHandler` (`objget/__init__.py` does it at import when `logging` is there already), runs
what waited for logging (`when_bound`: the redaction filters) and forwards from then on, with
`stacklevel` set so that a record names the caller, not this module.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

TYPE_CHECKING = False  # typing's constant, without importing typing (~11 M instructions)

if TYPE_CHECKING:
    from logging import Logger

__all__ = ["DEBUG", "INFO", "WARNING", "Log", "log", "when_bound"]

# logging's levels, without logging (pinned to logging's own values by a test)
DEBUG, INFO, WARNING = 10, 20, 30

_lock = threading.RLock()  # (a job may call `when_bound` again)
_waiting: list[Callable[[], None]] = []


class Log:
    """A logger by name that reaches `logging` only once `logging` is loaded."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: Logger | None = None

    def bound(self) -> Logger | None:
        """The real logger, or None while `logging` is not loaded (nobody listens)."""
        logger = self._logger
        if logger is None and "logging" in sys.modules:
            logger = self._logger = _bind(self.name)
        return logger

    def isEnabledFor(self, level: int) -> bool:
        logger = self.bound()
        return logger is not None and logger.isEnabledFor(level)

    def debug(self, msg: str, *args: object) -> None:
        logger = self.bound()
        if logger is not None:
            logger.debug(msg, *args, stacklevel=2)

    def info(self, msg: str, *args: object) -> None:
        logger = self.bound()
        if logger is not None:
            logger.info(msg, *args, stacklevel=2)

    def warning(self, msg: str, *args: object) -> None:
        logger = self.bound()
        if logger is not None:
            logger.warning(msg, *args, stacklevel=2)


def _bind(name: str) -> Logger:
    """`logging.getLogger(name)`, with objget's NullHandler on the package's logger and what
    waited for logging run once (`logging` is loaded: the caller checked)."""
    import logging

    with _lock:  # the jobs run under it: a second thread's first record waits for them
        root = logging.getLogger("objget")
        if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
            root.addHandler(logging.NullHandler())
        while _waiting:
            _waiting.pop(0)()
    return logging.getLogger(name)


def when_bound(job: Callable[[], None]) -> None:
    """Run `job` (it configures loggers) now if `logging` is loaded, else when the library
    first logs after `logging` is loaded: before that no record of the library exists."""
    with _lock:
        waits = "logging" not in sys.modules  # checked under the lock `_bind` drains under
        if waits and job not in _waiting:
            _waiting.append(job)
    if not waits:
        job()


log = Log("objget")
