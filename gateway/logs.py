"""Structured logging: JSON lines, a correlation id on every line, no personal data.

The pipeline is structlog's: small processors, each a function of
``(logger, method, event_dict)``. ``redact_personal_data`` runs last before
rendering, so whatever a caller binds, IIN-shaped numbers and values under
personal-data keys never reach a log line. Payloads are never logged at all.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# Twelve digits standing alone: the shape of an IIN (and of a BIN). Anything of
# that shape is masked, whatever it really is.
_IIN_SHAPED = re.compile(r"(?<!\d)\d{12}(?!\d)")
_PERSONAL_KEYS = frozenset(
    {
        "iin", "bin", "surname", "given_name", "patronymic", "name", "full_name",
        "birth_date", "address", "subject", "person", "body", "payload", "ordering_key",
    }
)
_MASK = "[redacted]"


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _IIN_SHAPED.sub("[iin]", value)
    if isinstance(value, int) and not isinstance(value, bool) and 10**11 <= abs(value) < 10**12:
        return "[iin]"
    if isinstance(value, dict):
        return {key: _MASK if str(key).lower() in _PERSONAL_KEYS else _redact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_redact(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return value


def redact_personal_data(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask personal data in every field of the event (processor)."""
    for key in list(event_dict):
        if key.lower() in _PERSONAL_KEYS:
            event_dict[key] = _MASK
        else:
            event_dict[key] = _redact(event_dict[key])
    return event_dict


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Set up structlog (and the standard library's logging, for libraries) once per process."""
    stream = stream or sys.stderr
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library; route them through the same
    # redaction so an access log line cannot leak a query string with an IIN.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                redact_personal_data,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
