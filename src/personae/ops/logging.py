"""Structured log lines: JSON for machines, columns for people, never a credential.

Everything logs through the standard library (``log.info("job.finished", extra={...})``);
:func:`configure_logging` gives uvicorn a ``dictConfig`` mapping whose one handler
renders each record with structlog's ``ProcessorFormatter``: ISO UTC timestamp, level,
logger name, the event, its ``extra`` fields and the request id of the request being
handled, then :func:`personae.logs.redact` over every text value, then JSON lines (or,
on a terminal, console columns). The mapping holds only names and plain values, so
uvicorn's worker processes receive it intact.

:func:`log_access` writes the one ``request`` line per HTTP request, and
:class:`TurnLogger` one ``turn.finished`` line per turn: ids, outcome, timings and
token counts, never what was said.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from personae.config import Settings
from personae.conversations.observe import TurnReport
from personae.logs import redact, with_redaction
from personae.ops.context import request_context

ACCESS_LOGGER = "personae.access"
TURN_LOGGER = "personae.turns"
_DROPPED = frozenset({"color_message"})  # uvicorn's copy of a message with ANSI colours
EventDict = MutableMapping[str, Any]


def wants_json(settings: Settings, stream: Any = None) -> bool:
    """JSON unless asked for the console, or ``auto`` with a terminal on stderr."""
    if settings.log_format != "auto":
        return settings.log_format == "json"
    stream = stream if stream is not None else sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


def configure_logging(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping for the root and uvicorn's loggers: one
    stderr handler with the structured formatter and the redacting filter."""
    level = settings.log_level.upper()
    return with_redaction({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": f"{__name__}.structured_formatter",
                                      "as_json": wants_json(settings)}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "structured",
                                 "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {name: {"handlers": [], "level": level, "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    })


def structured_formatter(as_json: bool) -> structlog.stdlib.ProcessorFormatter:
    """The formatter every record goes through (named in :func:`configure_logging`)."""
    renderer: Any = (structlog.processors.JSONRenderer(default=str) if as_json
                     else structlog.dev.ConsoleRenderer(colors=False))
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            add_request_id,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_fields,
            renderer,
        ])


def add_request_id(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """The id of the request being handled, on every line logged while handling it."""
    if "request_id" not in event:
        request_id = request_context().request_id
        if request_id is not None:
            event["request_id"] = request_id
    return event


def redact_fields(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """Credentials out of the event and every text field (a traceback included)."""
    for key in _DROPPED & event.keys():
        del event[key]
    for key, value in event.items():
        event[key] = _scrubbed(value)
    return event


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value


_access = logging.getLogger(ACCESS_LOGGER)
_turns = logging.getLogger(TURN_LOGGER)


def log_access(*, method: str, route: str, status: int, duration_ms: float,
               request_id: str, user_id: str | None, client: str | None) -> None:
    """The one ``request`` line of an HTTP request (``route``: its template)."""
    if not _access.isEnabledFor(logging.INFO):
        return
    _access.info("request", extra={
        "request_id": request_id, "user_id": user_id, "method": method, "route": route,
        "status": status, "duration_ms": round(duration_ms, 2), "client": client})


_TURN_FIELDS = ("session_id", "persona_id", "persona_version", "provider", "model", "status",
                "time_to_first_token_ms", "response_ms", "prompt_tokens",
                "completion_tokens", "error_code")


class TurnLogger:
    """A turn observer: one ``turn.finished`` line at info per turn, without content."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or _turns

    def turn_finished(self, report: TurnReport) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {name: getattr(report, name) for name in _TURN_FIELDS}
        for name in ("time_to_first_token_ms", "response_ms"):
            if isinstance(fields[name], float):
                fields[name] = round(fields[name], 1)
        self.logger.info("turn.finished", extra=fields)
