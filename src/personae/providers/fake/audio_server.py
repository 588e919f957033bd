"""A real HTTP server speaking OpenAI's audio endpoints, for tests.

``POST /v1/audio/transcriptions`` (multipart: ``file``, ``model``, ``language``,
``prompt``, ``response_format``) and ``POST /v1/audio/speech`` (JSON: ``model``,
``input``, ``voice``, ``speed``, ``response_format``), served by aiohttp on a loopback
port from a background thread with its own event loop, so it works the same under a
test's loop and under a synchronous test client. Every request is recorded; the
answers are steerable while it runs::

    async with FakeAudioServer(transcripts=["hello there"]) as server:
        server.fail_next(1, status=503)
        ...  # point a provider at server.base_url; inspect server.requests

Speech is real audio: a tone (or the given PCM) as raw 24 kHz PCM16 (OpenAI's
``pcm``), or a WAV file with ``answer_wav``, streamed in chunks with an optional delay.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from personae.providers.fake.background import BackgroundServer
from personae.providers.fake.scripted_speech import tone

OPENAI_PCM_RATE = 24_000
START_BOUND_SECONDS = 10.0
POLL_SECONDS = 0.02
Script = list[str] | Callable[["AudioRequest"], str]


@dataclass(frozen=True, slots=True)
class AudioRequest:
    """One request as the server received it: its form or JSON fields, the uploaded
    file's bytes (transcriptions), and the headers."""

    endpoint: str  # "transcriptions" | "speech"
    fields: dict[str, Any]
    headers: dict[str, str]
    file: bytes = b""
    file_name: str | None = None
    file_type: str | None = None

    @property
    def model(self) -> str | None:
        return self.fields.get("model")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


@dataclass
class _Failure:
    count: int = 0  # -1: every call
    status: int = 503
    message: str = ""
    endpoint: str | None = None  # None: both


@dataclass
class _Speech:
    pcm: bytes | None = None  # None: a tone, 30 ms per character of input
    chunk_bytes: int = 4801  # odd on purpose: chunks split samples, as a network does
    chunk_delay: float = 0.0
    answer_wav: bool = False
    rate: int = OPENAI_PCM_RATE


@dataclass
class _Behaviour:
    transcripts: Script = field(default_factory=lambda: ["hello"])
    language: str | None = "english"
    avg_logprob: float | None = -0.1
    refuse_verbose_json: bool = False
    hang: bool = False
    speech: _Speech = field(default_factory=_Speech)


class FakeAudioServer(BackgroundServer):
    """A loopback OpenAI-compatible audio server whose behaviour tests can steer."""

    def __init__(self, *, host: str = "127.0.0.1", transcripts: Script | None = None) -> None:
        self.host, self.port = host, 0
        self.requests: list[AudioRequest] = []
        self.behaviour = _Behaviour()
        if transcripts is not None:
            self.behaviour.transcripts = transcripts
        self._failure = _Failure()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- behaviour -------------------------------------------------------------------

    @property
    def speech(self) -> _Speech:
        """What ``/audio/speech`` answers (``pcm``, ``chunk_bytes``, ``chunk_delay``,
        ``answer_wav``, ``rate``): set its fields."""
        return self.behaviour.speech

    def fail_next(self, n: int = 1, status: int = 503, message: str = "",
                  endpoint: str | None = None) -> None:
        """Answer the next ``n`` calls (of ``endpoint``, or any) with ``status``."""
        with self._lock:
            self._failure = _Failure(n, status, message, endpoint)

    def fail_always(self, status: int = 503, message: str = "",
                    endpoint: str | None = None) -> None:
        self.fail_next(-1, status, message, endpoint)

    def hang(self, on: bool = True) -> None:
        """Accept requests and never answer (until switched off or stopped)."""
        self.behaviour.hang = on

    def calls(self, endpoint: str) -> list[AudioRequest]:
        return [request for request in self.requests if request.endpoint == endpoint]

    def _take_failure(self, endpoint: str) -> _Failure | None:
        with self._lock:
            failure = self._failure
            if failure.count == 0 or failure.endpoint not in (None, endpoint):
                return None
            if failure.count > 0:
                failure.count -= 1
            return failure

    # -- HTTP ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        return app

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        fields: dict[str, Any] = {}
        upload: web.FileField | None = None
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                upload = value
            else:
                fields[name] = value
        recorded = AudioRequest("transcriptions", fields, dict(request.headers),
                                upload.file.read() if upload else b"",
                                upload.filename if upload else None,
                                upload.content_type if upload else None)
        self.requests.append(recorded)
        refused = await self._refusal("transcriptions")
        if refused is not None:
            return refused
        if upload is None:
            return error_response(400, "file: required")
        if fields.get("response_format") == "verbose_json" and \
                self.behaviour.refuse_verbose_json:
            return error_response(400, "response_format 'verbose_json' is not supported")
        return web.json_response(self._transcript(recorded))

    def _transcript(self, request: AudioRequest) -> dict[str, Any]:
        script = self.behaviour.transcripts
        if callable(script):
            text = script(request)
        else:
            index = len(self.calls("transcriptions")) - 1
            text = script[min(index, len(script) - 1)] if script else ""
        if request.fields.get("response_format") != "verbose_json":
            return {"text": text}
        body: dict[str, Any] = {"text": text, "task": "transcribe",
                                "language": request.fields.get("language") or
                                self.behaviour.language,
                                "duration": _wav_seconds(request.file)}
        if self.behaviour.avg_logprob is not None:
            body["segments"] = [{"id": 0, "text": text,
                                 "avg_logprob": self.behaviour.avg_logprob}]
        return body

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(AudioRequest("speech", body if isinstance(body, dict) else {},
                                          dict(request.headers)))
        refused = await self._refusal("speech")
        if refused is not None:
            return refused
        if not isinstance(body, dict) or not isinstance(body.get("input"), str):
            return error_response(400, "input: required")
        return await self._stream_audio(request, self._audio(body["input"]))

    def _audio(self, text: str) -> bytes:
        speech = self.speech
        pcm = speech.pcm if speech.pcm is not None else tone(
            0, int(len(text) * 0.03 * speech.rate), speech.rate)
        if not speech.answer_wav:
            return pcm
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(speech.rate)
            wav.writeframes(pcm)
        return out.getvalue()

    async def _stream_audio(self, request: web.Request, audio: bytes) -> web.StreamResponse:
        speech = self.speech
        response = web.StreamResponse(headers={
            "Content-Type": "audio/wav" if speech.answer_wav else "audio/pcm"})
        await response.prepare(request)
        for chunk in _pieces(audio, speech.chunk_bytes):
            if speech.chunk_delay:
                await asyncio.sleep(speech.chunk_delay)
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _refusal(self, endpoint: str) -> web.Response | None:
        """Hang while told to; then a scheduled failure, if any."""
        while self.behaviour.hang and not self._stopping.is_set():  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)
        failure = self._take_failure(endpoint)
        return error_response(failure.status, failure.message) if failure else None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Serve from a background thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,),
                                        name="fake-audio", daemon=True)
        self._thread.start()
        if not started.wait(START_BOUND_SECONDS) or self._runner is None:
            self.stop()
            raise RuntimeError("fake audio server did not start")

    def _serve(self, started: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._open())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
        finally:
            started.set()
            loop.close()

    async def _open(self) -> None:
        runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        """Release hanging requests, shut down, and wait (bounded) for the thread."""
        self._stopping.set()
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=START_BOUND_SECONDS)
        self._thread, self._loop, self._runner = None, None, None



def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[start:start + size] for start in range(0, len(data), size)]


def _wav_seconds(data: bytes) -> float:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError):
        return 0.0


def error_response(status: int, message: str = "") -> web.Response:
    """An error in OpenAI's shape."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    text = message or f"fake upstream failure ({status})"
    return web.Response(status=status, content_type="application/json",
                        text=json.dumps({"error": {"message": text, "type": kind,
                                                   "code": None}}))
