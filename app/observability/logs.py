"""Structured logs: one JSON object per line (structlog), for the app's own loggers ("app.*",
"irt.*"). The request's id is merged into every line written while it is served, so a request's
log line, the errors logged during it and its audit entries share one id."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LOGGERS = ("app", "irt")
"""The app's logger namespaces (module loggers are `app.<module>`, the edge's `irt.<part>`)."""
_MARK = "_irt_json_handler"


def processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def formatter() -> logging.Formatter:
    """Renders a record (from structlog or plain `logging`) as one JSON line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
    )


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is when a line is written (not when the app was built).

    The stream is swapped without `setStream`, which flushes the old stream first: a stream
    closed since (a test's captured stderr) would raise out of the request being served."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure() -> None:
    """Idempotent: several apps in one process (the tests) share one handler."""
    structlog.configure(
        processors=[*processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        if not any(getattr(h, _MARK, False) for h in logger.handlers):
            handler = _StderrHandler(sys.stderr)
            handler.setFormatter(formatter())
            setattr(handler, _MARK, True)
            logger.addHandler(handler)


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
