"""objget logs through `objget._log`: no `logging` import until someone can be listening, and
then the same records as `logging.getLogger("objget")` would give (NullHandler, redaction,
the caller's location). Each case runs in a fresh interpreter: the import order is the point.
"""

from __future__ import annotations

import logging

from ..fresh import fresh


def test_the_levels_are_loggings():
    from objget import _log

    assert (_log.DEBUG, _log.INFO, _log.WARNING) == (logging.DEBUG, logging.INFO, logging.WARNING)


def test_import_objget_does_not_import_logging():
    proc = fresh(
        """
        import sys, objget
        from objget.engine._downloader import Downloader  # the modules that log
        from objget.backends import http
        print("logging" in sys.modules)
        """
    )
    assert proc.stdout.split() == ["False"]


def test_the_null_handler_when_logging_was_imported_first():
    proc = fresh(
        """
        import logging, objget
        print([type(h).__name__ for h in logging.getLogger("objget").handlers])
        """
    )
    assert proc.stdout.split() == ["['NullHandler']"]


def test_the_null_handler_when_logging_is_imported_after_objget():
    """A warning the library logs with no handler configured anywhere: the NullHandler is
    there by then, so `logging.lastResort` prints nothing."""
    proc = fresh(
        """
        import objget
        from objget._config import DownloadConfig
        from objget.backends._transport import Transport
        import logging
        Transport(DownloadConfig(verify_tls=False))  # logs a warning
        print([type(h).__name__ for h in logging.getLogger("objget").handlers])
        """
    )
    assert proc.stdout.split() == ["['NullHandler']"]
    assert proc.stderr == ""


def test_a_warning_reaches_logging_configured_after_import():
    proc = fresh(
        """
        import objget
        from objget._config import DownloadConfig
        from objget.backends._transport import Transport
        import logging, sys
        logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(module)s %(message)s")
        Transport(DownloadConfig(verify_tls=False))
        """
    )
    assert proc.stdout.splitlines() == [
        "WARNING _transport TLS certificates are not verified (verify_tls=False)"
    ]


def test_a_record_names_its_caller():
    proc = fresh(
        """
        import logging, sys
        from objget._log import log
        logging.basicConfig(stream=sys.stdout, format="%(funcName)s %(lineno)d %(message)s")
        def here():
            log.info("x %d", 1)
        logging.getLogger("objget").setLevel(logging.INFO)
        here()
        """
    )
    assert proc.stdout.split() == ["here", "6", "x", "1"]


def test_redaction_set_up_before_logging_is_loaded_still_applies():
    """The transport asks for the redaction filters before `logging` exists: they are put on
    objget's logger before its first record reaches a handler."""
    proc = fresh(
        """
        import sys
        from objget._config import DownloadConfig
        from objget.backends._transport import Transport
        Transport(DownloadConfig())
        assert "logging" not in sys.modules
        import logging
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
        from objget._log import log
        log.info("GET %s", "https://h/k?X-Amz-Signature=s3cr3t&versionId=1")
        """
    )
    assert "s3cr3t" not in proc.stdout
    assert "REDACTED" in proc.stdout


def test_is_enabled_for_without_logging_is_false():
    proc = fresh(
        """
        import sys
        from objget._log import DEBUG, WARNING, log
        print(log.isEnabledFor(DEBUG), log.isEnabledFor(WARNING), "logging" in sys.modules)
        log.warning("dropped %s", 1)
        import logging
        print(log.isEnabledFor(DEBUG), log.isEnabledFor(WARNING))
        """
    )
    assert proc.stdout.split() == ["False", "False", "False", "False", "True"]
    assert proc.stderr == ""
