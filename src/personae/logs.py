"""Credentials never reach a log line.

A WebSocket sends its key as ``?api_key=`` (browsers cannot set headers there), and
uvicorn writes every path with its query string; a database URL may carry a password;
an exception may quote a header. :class:`RedactingFilter` rewrites each record before
any handler formats it: its message, its arguments (uvicorn's access logger passes the
path as one), and its traceback. :func:`install_redaction` puts it on every handler of
the root and uvicorn loggers, once logging is configured.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from personae.auth.principal import KEY_PREFIX

REDACTED = "[REDACTED]"
SERVER_LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error")
# Records whose arguments a formatter unpacks by position (uvicorn's AccessFormatter):
# their arguments are redacted one by one and never folded into the message.
_POSITIONAL = frozenset({"uvicorn.access"})

_SECRET_NAMES = r"api[_-]?key|access[_-]?token|token|key|password|passwd|secret"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # ?api_key=..., &token=..., password=... (query strings, form bodies, settings dumps)
    (re.compile(rf"(?i)\b((?:{_SECRET_NAMES})=)[^&\s\"',;]+"), rf"\1{REDACTED}"),
    # "Bearer <token>" wherever it appears, and any other Authorization value (Basic ...)
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*['\"]?(?:basic\s+|token\s+)?)"
                r"(?!bearer\s)[^\s'\",;]+"), rf"\1{REDACTED}"),
    # X-API-Key: ... (as a header line or a dict item)
    (re.compile(r"(?i)(x-api-key['\"]?\s*[:=,]\s*['\"]?)[^\s'\",;]+"), rf"\1{REDACTED}"),
    # our own keys wherever they appear
    (re.compile(rf"{re.escape(KEY_PREFIX)}[A-Za-z0-9_-]{{6,}}"), REDACTED),
    # scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
)


def redact(text: str) -> str:
    """``text`` with every credential it shows replaced by ``[REDACTED]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def _redact_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(_redact_value(a) for a in args)
    if isinstance(args, Mapping):
        return {k: _redact_value(v) for k, v in args.items()}
    return args


class RedactingFilter(logging.Filter):
    """Redacts a record in place; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:  # the message is a format: redacting it could eat a placeholder
            record.args = _redact_args(record.args)
            if record.name not in _POSITIONAL:
                self._fold(record)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True

    @staticmethod
    def _fold(record: logging.LogRecord) -> None:
        """A credential in the format, or split between it and an argument (``"token=%s",
        secret``), shows once formatted: then the record keeps the redacted text alone."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return  # a malformed record: logging reports it as usual
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None


_FILTER = RedactingFilter()


def with_redaction(config: Mapping[str, Any]) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping (such as uvicorn's) with the redacting
    filter on every handler, so it applies from the server's first line."""
    result = copy.deepcopy(dict(config))
    result["filters"] = {**result.get("filters", {}),
                         "redact": {"()": f"{__name__}.RedactingFilter"}}
    for handler in result.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", []), "redact"]
    return result


def install_redaction(logger_names: Iterable[str] = SERVER_LOGGERS) -> None:
    """Put the redacting filter on every handler of these loggers (idempotent)."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(_FILTER)
