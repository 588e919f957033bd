"""A real HTTP server speaking OpenAI chat completions, for tests and benchmarks.

Talking to a loopback server exercises the real SDK, HTTP and SSE parsing, where a
mocked client would not. It runs uvicorn in a background thread with its own event
loop, so a benchmark's client and server do not compete for one loop, and its
behaviour (latency, failures, hangs, mid-stream drops) can be changed while it runs.

    async with FakeOpenAIServer(latency=0.01) as server:
        server.fail_next(1, status=503)
        ...  # point a provider at server.base_url; inspect server.requests

Or from a shell: ``python -m personae.providers.fake.openai_server --port 9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from personae.providers.fake.background import BackgroundServer
from personae.providers.fake.scripted import split_words

Body = dict[str, Any]
Reply = str | Callable[[Body], str]
JSONReply = Any | Callable[[Body], Any]
START_BOUND_SECONDS = 10.0
POLL_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One chat-completions request as the server received it."""

    body: Body
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def temperature(self) -> float | None:
        return self.body.get("temperature")

    @property
    def last_user(self) -> str:
        return last_user_message(self.body)


def last_user_message(body: Body) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def echo(body: Body) -> str:
    """The default reply: the last user message, so a nonce in it comes back."""
    return last_user_message(body)


def example_for(schema: Any) -> Any:
    """A minimal instance of a JSON schema, for ``response_format`` requests."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        return {key: example_for(sub) for key, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    return False if kind == "boolean" else None


class FakeOpenAIServer(BackgroundServer):
    """A loopback OpenAI-compatible server whose behaviour tests can steer."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0,
                 token_delay: float = 0.0, reply: Reply | None = None,
                 json_reply: JSONReply = None, models: tuple[str, ...] = ("fake-model",),
                 ) -> None:
        self.host, self.port = host, port
        self.models = models
        self.requests: list[RecordedRequest] = []
        self.waiting = 0  # chat requests received and not answered yet (the loop's thread)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.reset(latency=latency, token_delay=token_delay, reply=reply, json_reply=json_reply)

    # -- behaviour -------------------------------------------------------------------

    def reset(self, *, latency: float = 0.0, token_delay: float = 0.0,
              reply: Reply | None = None, json_reply: JSONReply = None) -> None:
        """Back to a healthy server; recorded requests are kept."""
        self.latency = latency  # seconds before the first byte
        self.token_delay = token_delay  # seconds between deltas
        self.reply: Reply = reply if reply is not None else echo
        # None: a minimal instance of the requested schema; for json_object, {"reply": echo}
        self.json_reply = json_reply
        self.hang = False  # True: accept requests and never answer
        self.send_usage = True  # False: ignore stream_options.include_usage
        self.interrupt_after: int | None = None  # drop the stream after N deltas
        self.interrupt_with_error = False  # ...with an SSE error event instead of a drop
        with self._lock:
            self._fail_count = 0
            self._failure: tuple[int, str, str | None] = (503, "", None)

    def fail_next(self, n: int = 1, status: int = 503, message: str = "",
                  code: str | None = None) -> None:
        """Answer the next ``n`` chat requests with ``status`` and an OpenAI error body
        (with ``code`` as its ``error.code``, e.g. ``"context_length_exceeded"``)."""
        with self._lock:
            self._fail_count, self._failure = n, (status, message, code)

    def fail_always(self, status: int = 503, message: str = "", code: str | None = None) -> None:
        self.fail_next(-1, status, message, code)

    @property
    def chat_count(self) -> int:
        return len(self.requests)

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def _take_failure(self) -> tuple[int, str, str | None] | None:
        with self._lock:
            if self._fail_count == 0:
                return None
            if self._fail_count > 0:
                self._fail_count -= 1
            return self._failure

    # -- HTTP ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def build_app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
        ])

    async def _models(self, request: Request) -> Response:
        data = [{"id": model, "object": "model", "created": 0, "owned_by": "fake"}
                for model in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "request body is not JSON")
        self.requests.append(RecordedRequest(body, dict(request.headers)))
        self.waiting += 1
        try:
            return await self._answer(body)
        finally:
            self.waiting -= 1

    async def _answer(self, body: Body) -> Response:
        while self.hang and not self._stopping.is_set():  # noqa: ASYNC110 - set from other threads
            await asyncio.sleep(POLL_SECONDS)
        if self.latency:
            await asyncio.sleep(self.latency)
        failure = self._take_failure()
        if failure is not None:
            return error_response(*failure)
        pieces, reason = self._pieces(body)
        if body.get("stream"):
            return StreamingResponse(self._sse(body, pieces, reason),
                                     media_type="text/event-stream")
        return JSONResponse(self._completion(body, pieces, reason))

    def _pieces(self, body: Body) -> tuple[list[str], str]:
        """The reply as deltas, cut at ``max_tokens`` (one delta counts as a token)."""
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            wanted = self.json_reply
            schema = (response_format.get("json_schema") or {}).get("schema")
            value = wanted(body) if callable(wanted) else wanted
            text = json.dumps(example_for(schema) if value is None else value)
        elif response_format.get("type") == "json_object":  # any object: the echo, wrapped
            value = self.json_reply(body) if callable(self.json_reply) else self.json_reply
            text = json.dumps({"reply": last_user_message(body)} if value is None else value)
        else:
            text = self.reply(body) if callable(self.reply) else self.reply
        pieces = split_words(text)
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and len(pieces) > limit:
            return pieces[:limit], "length"
        return pieces, "stop"

    def _usage(self, body: Body, pieces: list[str]) -> dict[str, int]:
        prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
        return {"prompt_tokens": prompt, "completion_tokens": len(pieces),
                "total_tokens": prompt + len(pieces)}

    def _completion(self, body: Body, pieces: list[str], reason: str) -> Body:
        message = {"role": "assistant", "content": "".join(pieces)}
        return {"id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion",
                "created": int(time.time()), "model": body.get("model") or self.models[0],
                "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                "usage": self._usage(body, pieces)}

    async def _sse(self, body: Body, pieces: list[str], reason: str) -> AsyncIterator[str]:
        base = {"id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model") or self.models[0]}

        def chunk(delta: Body, finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return sse({**base, "choices": [choice]})

        yield chunk({"role": "assistant", "content": ""})
        for index, piece in enumerate(pieces):
            if self.interrupt_after is not None and index >= self.interrupt_after:
                if not self.interrupt_with_error:
                    raise ConnectionAbortedError("fake server dropped the stream")
                yield sse({"error": {"message": "fake failure mid-stream",
                                     "type": "server_error"}})
                yield "data: [DONE]\n\n"
                return
            if index and self.token_delay:
                await asyncio.sleep(self.token_delay)
            yield chunk({"content": piece})
        yield chunk({}, reason)
        if (body.get("stream_options") or {}).get("include_usage") and self.send_usage:
            yield sse({**base, "choices": [], "usage": self._usage(body, pieces)})
        yield "data: [DONE]\n\n"

    # -- lifecycle -------------------------------------------------------------------

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        return sock

    def _config(self) -> uvicorn.Config:
        """Fastest available stack; no global logging changes in the host process."""
        has = importlib.util.find_spec
        return uvicorn.Config(
            self.build_app(), log_config=None, access_log=False, lifespan="off",
            loop="uvloop" if has("uvloop") else "asyncio",
            http="httptools" if has("httptools") else "h11",
            backlog=2048, timeout_keep_alive=30, timeout_graceful_shutdown=2)

    def start(self) -> None:
        """Serve from a background thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        sock = self._listen()
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"fake-openai-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_BOUND_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        """Release hanging requests, shut down, and wait (bounded) for the thread."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=START_BOUND_SECONDS)
        self._server, self._thread = None, None

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the command-line entry)."""
        sock = self._listen()
        print(f"fake OpenAI server on {self.base_url}", flush=True)
        self._server = uvicorn.Server(self._config())
        self._server.run(sockets=[sock])



def sse(payload: Body) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def error_response(status: int, message: str = "", code: str | None = None) -> Response:
    """An error in OpenAI's shape, which the SDK turns into its status exceptions."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    text = message or f"fake upstream failure ({status})"
    return JSONResponse({"error": {"message": text, "type": kind, "code": code}},
                        status_code=status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds before the first byte of each reply")
    parser.add_argument("--token-delay", type=float, default=0.0,
                        help="seconds between streamed deltas")
    parser.add_argument("--reply", default=None,
                        help="fixed reply text (default: echo the last user message)")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(host=args.host, port=args.port, latency=args.latency,
                              token_delay=args.token_delay, reply=args.reply)
    server.serve_forever()


if __name__ == "__main__":
    main()
