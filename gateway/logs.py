"""Structured logging: JSON lines, a correlation id on every line, no personal data.

The pipeline is structlog's: small processors, each a function of
``(logger, method, event_dict)``. ``redact_personal_data`` runs last before
rendering, so whatever a caller binds, IIN-shaped numbers and values under
personal-data keys never reach a log line. Payloads are never logged at all.

Ids and paths that come from outside (``correlation_id``, ``message_id``, ``service``,
``route``, ``path``) are free text a caller chose: ``X-Correlation-Id: Ivanov Ivan`` or
``POST /soap/Ivanov`` would carry a name past a digits-only mask. So they are logged only in
a strict id shape — a UUID, or a short lower-case prefix and digits/hex (``penal-0001``,
``rel-3f2a…``), or a path of lower-case segments of such ids — and replaced with
``[unrecognised]`` otherwise.
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
_UNRECOGNISED = "[unrecognised]"
_ID_KEYS = frozenset({"correlation_id", "message_id", "client_message_id", "request_key", "case_id", "notice_id"})
_PATH_KEYS = frozenset({"service", "route", "path"})
# A UUID, or an optional lower-case prefix of at most 16 letters and then digits, hex and
# separators (a name has letters that are no hex digit: "ivanov" fails, "case-42" passes).
_ID_SHAPE = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|(?:[a-z]{1,16}[-_.:])*[0-9a-f][0-9a-f._:-]{0,110}"
)
# Path segments: lower-case words joined by - or _ (route and service names), ids of the
# shape above, or a route's {placeholder}.
_SEGMENT = re.compile(r"[a-z0-9]{1,24}(?:[-_][a-z0-9]{1,24}){0,6}|\{[a-z_]{1,32}\}")
_KNOWN_WORD = re.compile(r"[a-z]{1,24}")


def _loggable_id(value: str) -> str:
    return value if _ID_SHAPE.fullmatch(value) else _UNRECOGNISED


def _loggable_path(value: str) -> str:
    parts = value.split("/")
    if len(value) > 256 or not all(not part or _ID_SHAPE.fullmatch(part) or _SEGMENT.fullmatch(part)
                                   for part in parts):
        return _UNRECOGNISED
    return value


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
        value = event_dict[key]
        if key.lower() in _PERSONAL_KEYS:
            event_dict[key] = _MASK
            continue
        if isinstance(value, str) and key in _ID_KEYS:
            value = _loggable_id(value)
        elif isinstance(value, str) and key in _PATH_KEYS:
            value = _loggable_path(value)
        event_dict[key] = _redact(value)
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
