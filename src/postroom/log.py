"""structlog set-up: JSON lines in production, readable text on a terminal.

Events are fixed names (``delivery.deferred``) with values as keys; context
such as the queue id or the peer is bound once per session or attempt.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_SECRET_KEYS = frozenset({"password", "auth_data", "secret", "login_data"})


def _mask_secrets(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in _SECRET_KEYS & event.keys():
        event[key] = "********"
    return event


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Set up structlog (and the stdlib loggers of our libraries) once."""
    numeric = _LEVELS[level]
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # aiosmtpd and aiosmtplib log through the standard library; they speak
    # only on warnings, since their debug lines can carry AUTH exchanges.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
    logging.getLogger("mail.log").setLevel(max(numeric, logging.WARNING))
