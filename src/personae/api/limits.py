"""Request-body bounds, enforced before any route reads or parses a body.

A body over its limit is answered 413 (``too_large``, naming the limit and its
setting) without being read: at once when ``Content-Length`` says so, else as soon as
the bytes streamed in pass the limit. Uploads (``POST /v1/personas/import``, ``POST
/v1/evaluations``, ``PUT /v1/personas/{id}/avatar``,
``POST /v1/personas/{id}/lorebook``) may be ``max_upload_bytes``; audio uploads
(``POST /v1/sessions/{id}/audio``, ``POST /v1/audio/transcriptions``)
``voice_max_audio_bytes`` plus the form around the file (the route checks the file
itself against that setting); every other body ``max_body_bytes``.
The JSON bodies FastAPI parses for its typed routes are also checked for nesting depth
here (400, see :mod:`personae.limits`); the routes that read their own bodies (chat
completions, evaluations, imports) check it as they parse. The OpenAI-compatible
route answers in OpenAI's error shape, as its SDKs expect; a browser on a dashboard
page gets the dashboard's error page (``app.state.html_error``), as for any error.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personae.api.errors import is_page_request
from personae.api.routes.openai_compat import openai_error
from personae.errors import error_envelope
from personae.limits import NestedTooDeep, NotUnicode, load_json
from personae.writing.samples import MAX_TOTAL_CHARS

UPLOAD_PATHS = frozenset({"/v1/personas/import", "/v1/evaluations"})
OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/audio/transcriptions",
                          "/v1/audio/speech"})
# Audio uploads may be ``max_audio_bytes`` (the file) plus the multipart form around it.
AUDIO_UPLOAD_PATHS = frozenset({"/v1/audio/transcriptions"})
MULTIPART_OVERHEAD = 64 * 1024
_PARSED_BY_ROUTE = UPLOAD_PATHS | OPENAI_PATHS  # these check depth as they parse
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})
_PERSONAS = "/v1/personas/"
_PER_PERSONA_UPLOADS = ("/avatar", "/lorebook")
# Writing samples may be MAX_TOTAL_CHARS characters in all; JSON may escape each as
# \uXXXX (6 bytes), plus the rest of the body around them.
SAMPLES_BODY_BYTES = 6 * MAX_TOTAL_CHARS + 256 * 1024
_WRITING_PERSONAS = "/v1/writing/personas"


def is_samples_body(path: str) -> bool:
    """A body carrying writing samples: a writing persona's create, its samples' PUT."""
    return path == _WRITING_PERSONAS or (path.startswith(_WRITING_PERSONAS + "/")
                                         and path.endswith("/samples"))


def is_upload(path: str) -> bool:
    """A route taking a file: the fixed upload paths, a persona's avatar and lorebook."""
    return path in UPLOAD_PATHS or (path.startswith(_PERSONAS)
                                    and path.endswith(_PER_PERSONA_UPLOADS))


def is_audio_upload(path: str) -> bool:
    """A route taking a recording: a session's one-shot turn, OpenAI transcriptions."""
    return path in AUDIO_UPLOAD_PATHS or (path.startswith("/v1/sessions/")
                                          and path.endswith("/audio"))


class BodyLimits:
    """Pure ASGI middleware: size (413) and, for JSON, depth (400) of request bodies."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int,
                 max_audio_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.max_audio_bytes = max_audio_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, streamed, json_like = _body_headers(scope)
        if length is None and not streamed and scope["method"] in _BODILESS:
            await self.app(scope, receive, send)  # the hot path: no body at all
            return
        path = scope["path"]
        upload = is_upload(path)
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        if is_samples_body(path):
            limit = max(limit, SAMPLES_BODY_BYTES)
        setting = "PERSONAE_MAX_UPLOAD_BYTES" if upload else "PERSONAE_MAX_BODY_BYTES"
        too_large = (f"the {'upload' if upload else 'request body'} is larger than "
                     f"{limit:,} bytes ({setting})")
        shown_limit = limit  # the limit the client is told: for audio, the file's
        if self.max_audio_bytes is not None and is_audio_upload(path):
            upload, limit = True, self.max_audio_bytes + MULTIPART_OVERHEAD
            shown_limit = self.max_audio_bytes
            too_large = (f"the audio is larger than {shown_limit:,} bytes "
                         "(PERSONAE_VOICE_MAX_AUDIO_BYTES)")
        if length is not None and length > limit:
            await _send_error(scope, send, 413, "too_large", too_large,
                              {"limit": shown_limit})
            return
        if json_like and not upload and path not in _PARSED_BY_ROUTE and (length or streamed):
            await self._checked_json(scope, receive, send, limit, too_large)
            return
        await self.app(scope, _counting(receive, limit, too_large), send)

    async def _checked_json(self, scope: Scope, receive: Receive, send: Send, limit: int,
                            too_large: str) -> None:
        """Read the whole (bounded) JSON body, refuse it if too deep, then pass it on."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody left to answer
            body += message.get("body", b"")
            if len(body) > limit:
                await _send_error(scope, send, 413, "too_large", too_large,
                                  {"limit": limit})
                return
            if not message.get("more_body", False):
                break
        try:
            load_json(bytes(body), "the request body")
        except (NestedTooDeep, NotUnicode) as exc:
            await _send_error(scope, send, 400, exc.code, exc.message, exc.details)
            return
        except ValueError:
            pass  # malformed JSON: the route reports it as usual
        await self.app(scope, _replay(bytes(body), receive), send)


def _body_headers(scope: Scope) -> tuple[int | None, bool, bool]:
    """``Content-Length`` (None if absent or unreadable), whether the body is chunked,
    and whether it is JSON (FastAPI reads a body without a content type as JSON too)."""
    length: int | None = None
    streamed = False
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            streamed = True
        elif name == b"content-type":
            content_type = value.split(b";", 1)[0].strip().lower()
    json_like = not content_type or content_type == b"application/json" \
        or content_type.endswith(b"+json")
    return length, streamed, json_like


def _counting(receive: Receive, limit: int, too_large: str) -> Receive:
    """``receive`` that fails with a 413 once more than ``limit`` bytes came in; routes
    reading the body then answer it through the usual error handlers."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, too_large)
        return message

    return counted


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives the body already read, then whatever comes next."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _send_error(scope: Scope, send: Send, status: int, code: str, message: str,
                      details: dict[str, Any]) -> None:
    """The refusal, sent at once: the body is not read, so the connection is closed."""
    if "app" in scope:  # only a whole app knows the dashboard (and so its pages)
        request = Request(scope)
        if is_page_request(request):
            page = request.app.state.html_error(request, status, message,
                                                {"Connection": "close"})
            await page(scope, _nothing, send)
            return
    path = scope["path"]
    shape = openai_error(status, code, message, details) if path in OPENAI_PATHS \
        else error_envelope(code, message, details)
    body = json.dumps(shape).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _nothing() -> Message:
    """The ``receive`` an error page gets: the unread body is not its to read."""
    return {"type": "http.disconnect"}
