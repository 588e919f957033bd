"""A small client of the OpenAI chat-completions protocol, over aiohttp.

One ``POST {base_url}/chat/completions``, answered with JSON or with server-sent
events, is all a provider needs. The official SDK's generic request path cost about
five times the HTTP exchange itself (~340 us of CPU against ~65 us per request on
the benchmark machine), and this is every turn's hot path, so it is not used here.

Failures surface at once (no retries here: :mod:`personae.providers.resilience` owns
them) as the package's provider errors, classified by :func:`map_error`:

- the server's status: 429 and 5xx are retryable, other 4xx are not; the message is
  the server's own explanation; a prompt too long for the model
  (``context_length_exceeded``) is the caller's ``ContextTooLong``, a 400;
- a timeout (connecting, or waiting for bytes): ``ProviderTimeout``, retryable;
- a refused, reset or dropped connection: ``ProviderUnavailable``, retryable;
- an error event inside a stream: ``ProviderError`` ("stream failed"), retryable.

Each event loop gets its own ``aiohttp.ClientSession`` (sessions are bound to the
loop that made them), created on first use and kept for its keep-alive pool.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from yarl import URL

from personae.errors import ContextTooLong, ProviderError, ProviderTimeout, ProviderUnavailable

DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEEPALIVE_SECONDS = 5.0  # an idle pooled connection is closed after this long
ERROR_BODY_BYTES = 64 * 1024  # what is read of an error answer
SHOWN_CHARS = 200  # of an unexpected body, in an error message
STREAM_ERROR = "An error occurred during streaming"
TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)
_DONE = b"[DONE]"
CONTEXT_CODE = "context_length_exceeded"
_WINDOW = re.compile(r"maximum context length is ([\d,]+) tokens")
_PROMPT = re.compile(r"(?:resulted in|requested) ([\d,]+) tokens")


class ChatClient:
    """``/chat/completions`` of one server: whole replies and streamed ones."""

    def __init__(self, provider: str, base_url: str, api_key: str | None, *,
                 timeout: float, max_connections: int) -> None:
        self.provider = provider
        self.url = URL(base_url.rstrip("/") + "/chat/completions")
        self.max_connections = max_connections
        self.timeout = aiohttp.ClientTimeout(total=None, connect=timeout,
                                             sock_connect=timeout, sock_read=timeout)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        **client_headers(api_key)}
        self._sessions = LoopSessions(self.headers, self.timeout, max_connections)

    async def complete(self, body: dict[str, Any]) -> Any:
        """The server's JSON answer to a non-streamed request."""
        return await post_for_json(self._session(), self.url, _encode(body), self.provider)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[list[Any]]:
        """The stream's chunks, in lists: every chunk that arrived in one read of the
        socket, together, so a caller can hand them on as one. Ends at ``[DONE]``; an
        error event raises, after the chunks that came ahead of it."""
        try:
            async with self._session().post(self.url, data=_encode(body)) as response:
                if response.status >= 400:
                    raise await status_error(self.provider, response)
                decoder = EventDecoder()
                while not decoder.done:
                    data = await response.content.readany()
                    chunks, failure = self._chunks(decoder.feed(data) if data
                                                   else decoder.end())
                    if chunks:
                        yield chunks
                    if failure is not None:
                        raise failure
                    if not data:
                        return
        except TRANSPORT_ERRORS as exc:
            raise map_error(self.provider, exc) from exc

    def _chunks(self, payloads: list[bytes]) -> tuple[list[Any], ProviderError | None]:
        """The events' JSON chunks up to ``[DONE]`` or an error event (returned apart)."""
        chunks: list[Any] = []
        for payload in payloads:
            if payload == _DONE:
                break
            try:
                chunk = json.loads(payload)
            except ValueError:
                return chunks, unexpected_reply(self.provider, payload)
            if isinstance(chunk, dict) and chunk.get("error"):
                explained = _explanation(chunk["error"]) or STREAM_ERROR
                return chunks, ProviderError(self.provider, f"stream failed: {explained}",
                                             retryable=True)
            chunks.append(chunk)
        return chunks, None

    def _session(self) -> aiohttp.ClientSession:
        return self._sessions.get()

    async def aclose(self) -> None:
        await self._sessions.aclose()


def client_headers(api_key: str | None) -> dict[str, str]:
    """What every request to a provider carries: who asks, and the key if any."""
    headers = {"User-Agent": "personae"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


class LoopSessions:
    """One ``aiohttp.ClientSession`` per event loop (a session is bound to the loop
    that made them), made on first use and kept for its keep-alive pool."""

    def __init__(self, headers: dict[str, str], timeout: aiohttp.ClientTimeout,
                 max_connections: int) -> None:
        self.headers = headers
        self.timeout = timeout
        self.max_connections = max_connections
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                  aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary())

    def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections,
                                             keepalive_timeout=KEEPALIVE_SECONDS)
            session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, headers=self.headers,
                cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False)
            self._sessions[loop] = session
        return session

    async def aclose(self) -> None:
        """Close the session of the loop this runs in (a client used from several loops
        is closed from each, before it ends)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        session = self._sessions.pop(loop, None)
        if session is not None:
            await session.close()


class EventDecoder:
    """Server-sent events, fed the bytes as they arrive: the ``data`` of each complete
    event (several ``data`` lines joined by newlines); other fields and comments are
    skipped. A line is cut by ``\\n``, ``\\r\\n`` or ``\\r``; an event by an empty line."""

    def __init__(self) -> None:
        self.done = False
        self._partial = b""  # an unfinished line (or a final ``\r`` that may precede ``\n``)
        self._data: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        lines = (self._partial + data).splitlines(keepends=True)
        self._partial = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        return self._events(lines)

    def end(self) -> list[bytes]:
        """The body ended: an event cut short by the end still counts."""
        lines = [self._partial, b"\n"] if self._partial else [b"\n"]
        self._partial = b""
        return self._events(lines)

    def _events(self, lines: list[bytes]) -> list[bytes]:
        events: list[bytes] = []
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
        if _DONE in events:
            self.done = True
        return events


async def status_error(provider: str, response: aiohttp.ClientResponse) -> ProviderError:
    """An error answer, classified by :func:`upstream_error`."""
    raw = await response.content.read(ERROR_BODY_BYTES)
    return upstream_error(provider, response.status, raw, response.reason)


def upstream_error(provider: str, status: int, raw: bytes,
                   reason: str | None = None) -> ProviderError:
    """429 and 5xx are worth retrying, other statuses are not; a prompt too long for
    the model is the caller's :class:`ContextTooLong` (400), not a provider failure."""
    explained = upstream_message(raw, reason)
    if 400 <= status < 500 and (error := _context_error(raw)) is not None:
        prompt, window = _context_counts(error, explained)
        return ContextTooLong.for_prompt(
            provider, prompt_tokens=prompt, context_window=window,
            details={"status": status, "upstream_message": explained})
    return ProviderError(provider, f"{status} {explained}",
                         retryable=status == 429 or status >= 500, details={"status": status})


def _context_error(raw: bytes) -> dict[str, Any] | None:
    """The error object of a "prompt too long" answer: OpenAI's (and Groq's, ...) code
    ``context_length_exceeded``, llama.cpp's server's type, vLLM's wording; else None."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    if (error.get("code") == CONTEXT_CODE or error.get("type") == "exceed_context_size_error"
            or (isinstance(message, str) and "maximum context length" in message)):
        return error
    return None


def _context_counts(error: dict[str, Any], message: str) -> tuple[int | None, int | None]:
    """The prompt's tokens and the model's context, from llama.cpp's fields or from
    OpenAI's message ("maximum context length is 8192 tokens ... resulted in 10018")."""
    prompt, window = error.get("n_prompt_tokens"), error.get("n_ctx")
    if not isinstance(window, int) and (found := _WINDOW.search(message)):
        window = int(found[1].replace(",", ""))
    if not isinstance(prompt, int) and (found := _PROMPT.search(message)):
        prompt = int(found[1].replace(",", ""))
    return (prompt if isinstance(prompt, int) else None,
            window if isinstance(window, int) else None)


def upstream_message(raw: bytes, reason: str | None = None) -> str:
    """The server's own explanation: OpenAI's ``{"error": {"message"}}``, a bare
    ``{"error": "..."}`` or ``{"message"}``, else the body's text or the reason."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        explained = _explanation(body.get("error", body))
        if explained:
            return explained
    return text[:SHOWN_CHARS] or reason or "no explanation given"


def _explanation(error: Any) -> str | None:
    if isinstance(error, dict):
        message = error.get("message")
        return message if isinstance(message, str) and message else None
    return error if isinstance(error, str) and error else None


def map_error(provider: str, exc: BaseException) -> ProviderError:
    """A transport failure, classified: timeouts, then anything else that broke the
    connection (refused, reset, dropped mid-stream)."""
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(provider, "timed out waiting for the server", retryable=True)
    return ProviderUnavailable(provider, f"connection failed: {exc}", retryable=True)


def unexpected_reply(provider: str, raw: bytes) -> ProviderError:
    """A body that is not the protocol's JSON: the server's fault, worth another try."""
    shown = raw[:SHOWN_CHARS].decode("utf-8", "replace")
    return ProviderError(provider, f"unexpected reply: {shown}", retryable=True)


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def post_for_json(session: aiohttp.ClientSession, url: URL, data: Any,
                        provider: str) -> Any:
    """POST ``data`` (bytes or a form) and the JSON answer; an error status, a transport
    failure or a body that is not JSON becomes the provider's classified error."""
    try:
        async with session.post(url, data=data) as response:
            if response.status >= 400:
                raise await status_error(provider, response)
            raw = await response.read()
    except TRANSPORT_ERRORS as exc:
        raise map_error(provider, exc) from exc
    try:
        return json.loads(raw)
    except ValueError:
        raise unexpected_reply(provider, raw) from None
