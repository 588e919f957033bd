"""Redaction of credentials from log records, whatever part of the record holds them."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest
import uvicorn.config
from uvicorn.logging import AccessFormatter

from personae.logs import REDACTED, RedactingFilter, install_redaction, redact, with_redaction

KEY = "pk_Zm9vYmFyYmF6cXV4LTAxMjM0NTY3ODk"


@pytest.mark.parametrize(("text", "expected"), [
    (f'"WebSocket /v1/sessions/s/ws?api_key={KEY}" [accepted]',
     f'"WebSocket /v1/sessions/s/ws?api_key={REDACTED}" [accepted]'),
    ("GET /x?token=abc&key=def&monkey=banana", f"GET /x?token={REDACTED}&key={REDACTED}"
                                               "&monkey=banana"),
    ("Authorization: Bearer anything.at-all", f"Authorization: Bearer {REDACTED}"),
    ("{'authorization': 'Basic dXNlcjpwYXNz'}", f"{{'authorization': 'Basic {REDACTED}'}}"),
    ("X-API-Key: s3cret", f"X-API-Key: {REDACTED}"),
    ("{'x-api-key': 's3cret'}", f"{{'x-api-key': '{REDACTED}'}}"),
    ("postgresql+asyncpg://app:s3cret@db:5432/personae",
     f"postgresql+asyncpg://app:{REDACTED}@db:5432/personae"),
    (f"sent {KEY} along", f"sent {REDACTED} along"),
    ("the basic idea, a token of thanks", "the basic idea, a token of thanks"),
])
def test_credentials_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def test_arguments_keep_their_shape_for_uvicorns_access_formatter() -> None:
    record = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET",
                     f"/v1/x?api_key={KEY}", "1.1", 200)
    assert RedactingFilter().filter(record)
    line = AccessFormatter("%(message)s", use_colors=False).format(record)
    assert line == f'127.0.0.1:5 - "GET /v1/x?api_key={REDACTED} HTTP/1.1" 200'


def test_a_credential_split_between_message_and_argument() -> None:
    record = _record("personae.something", "connecting with token=%s", "abc123")
    RedactingFilter().filter(record)
    assert record.getMessage() == f"connecting with token={REDACTED}"


def test_a_traceback_is_redacted() -> None:
    try:
        raise RuntimeError("could not connect to redis://:hunter2@cache:6379/0")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None,
                                   sys.exc_info())
    RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "hunter2" not in text and f"redis://:{REDACTED}@cache" in text


@pytest.fixture
def handler() -> Iterator[logging.StreamHandler[io.StringIO]]:
    logger = logging.getLogger("uvicorn.access")
    added = logging.StreamHandler(io.StringIO())
    logger.addHandler(added)
    yield added
    logger.removeHandler(added)


def test_installed_on_every_server_handler_once(
        handler: logging.StreamHandler[io.StringIO]) -> None:
    install_redaction(["uvicorn.access"])
    install_redaction(["uvicorn.access"])
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    logging.getLogger("uvicorn.access").warning("GET /?api_key=%s", KEY)
    assert handler.stream.getvalue() == f"GET /?api_key={REDACTED}\n"


def test_the_served_logging_config_redacts_from_the_first_line() -> None:
    config = with_redaction(uvicorn.config.LOGGING_CONFIG)
    assert set(config["handlers"]) == {"default", "access"}
    assert all(h["filters"] == ["redact"] for h in config["handlers"].values())
    assert config["filters"]["redact"] == {"()": "personae.logs.RedactingFilter"}
    assert "filters" not in uvicorn.config.LOGGING_CONFIG["handlers"]["access"]  # a copy
