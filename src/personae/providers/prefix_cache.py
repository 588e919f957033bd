"""Prompt prefixes kept between turns on the embedded model, so a turn evaluates only
the tokens that are new.

Why it is built this way:

* llama.cpp keeps the evaluated tokens of an instance's last prompt and reuses their
  common prefix with the next one. A session therefore goes back to the instance it
  last used, or to the idle instance whose last request shares the most text with its
  own (:func:`pick_instance`): the same session, or the same persona's system prompt.
* When sessions outnumber instances, an instance about to overwrite another session's
  evaluated tokens first saves them (its KV cache for sequence 0, with the token ids)
  into a :class:`StateCache` shared by the pool's instances; a turn whose prefix is
  best kept there restores it instead of evaluating it again. A state that a later
  one extends is dropped, and the number of states is bounded (LRU).
* llama-cpp-python's own ``save_state`` also copies an ``n_batch x n_vocab`` logits
  array (100 MB for SmolLM2, 311 MB for Qwen2.5 at n_batch 512) and takes 0.6-2 s, so
  states are saved with ``llama_state_seq_get_data``: about 23 KB per token for
  SmolLM2-135M, 12 KB for Qwen2.5-Coder-0.5B, and milliseconds to save or restore.
"""

from __future__ import annotations

import ctypes
import importlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Tokens = tuple[int, ...]
Messages = Sequence[Mapping[str, str]]
DEFAULT_STATES = 8  # at most ~200 MB for Qwen2.5-Coder-0.5B at a 2048-token context


def common_prefix(first: Sequence[object], second: Sequence[object]) -> int:
    """How many leading items (tokens, characters) the two sequences share.

    A binary search over slice comparisons, which run in C: a few thousand tokens
    against every cached state stays well under a millisecond.
    """
    if type(first) is not type(second):  # a list never equals a tuple
        first, second = tuple(first), tuple(second)
    length = min(len(first), len(second))
    if first[:length] == second[:length]:
        return length
    same, differs = 0, length  # first[:same] == second[:same]; not so up to differs
    while differs - same > 1:
        middle = (same + differs) // 2
        if first[same:middle] == second[same:middle]:
            same = middle
        else:
            differs = middle
    return same


@dataclass(frozen=True, slots=True, eq=False)
class CachedState:
    """An instance's evaluated tokens and the KV cache that holds them (read-only)."""

    tokens: Tokens
    data: Any  # the saved bytes (a ctypes array for llama.cpp)
    nbytes: int


class StateIO(Protocol):
    """Reads and writes an instance's evaluated state (llama.cpp in production)."""

    def held(self, llm: Any) -> Sequence[int]: ...

    def save(self, llm: Any) -> CachedState | None: ...

    def restore(self, llm: Any, state: CachedState) -> bool: ...


class StateCache:
    """Evaluated states shared by one pool's instances: bounded, least recently used
    first out, thread-safe. ``capacity`` 0 disables it (nothing is saved)."""

    def __init__(self, capacity: int = DEFAULT_STATES, io: StateIO | None = None) -> None:
        self._capacity = max(0, capacity)
        self._io: StateIO = io or LLAMA_STATES
        self._states: OrderedDict[Tokens, CachedState] = OrderedDict()
        self._lock = threading.Lock()
        self.saves = 0
        self.restores = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def resize(self, capacity: int) -> None:
        with self._lock:
            self._capacity = max(0, capacity)
            self._evict()

    def __len__(self) -> int:
        return len(self._states)

    @property
    def nbytes(self) -> int:
        """The memory the saved states take."""
        with self._lock:
            return sum(state.nbytes for state in self._states.values())

    def best(self, tokens: Sequence[int]) -> tuple[CachedState | None, int]:
        """The state sharing the longest prefix with ``tokens``, and that length."""
        tokens = tuple(tokens)
        with self._lock:
            found, length = None, 0
            for key, state in self._states.items():
                shared = common_prefix(key, tokens)
                if shared > length:
                    found, length = state, shared
            if found is not None:
                self._states.move_to_end(found.tokens)
            return found, length

    def covers(self, tokens: Sequence[int]) -> bool:
        """Whether some state holds all of ``tokens`` (and is then marked as used)."""
        tokens = tuple(tokens)
        with self._lock:
            for key in self._states:
                if key[: len(tokens)] == tokens:
                    self._states.move_to_end(key)
                    return True
            return False

    def put(self, state: CachedState) -> None:
        """Keep ``state``, dropping the states it extends, then the least recently used."""
        if self._capacity == 0:
            return
        tokens = state.tokens
        with self._lock:
            extended = [key for key in self._states if tokens[: len(key)] == key]
            for key in extended:
                del self._states[key]
            self._states[tokens] = state
            self._evict()

    def prepare(self, llm: Any, prompt: Sequence[int]) -> None:
        """Before ``llm`` evaluates ``prompt``: keep what it would overwrite, and load
        the cached state that shares more of the prompt than ``llm`` holds."""
        if self._capacity == 0:
            return
        held, prompt = tuple(self._io.held(llm)), tuple(prompt)
        kept = common_prefix(held, prompt)
        if kept < len(held) and not self.covers(held):
            saved = self._io.save(llm)
            if saved is not None:
                self.put(saved)
                self._count(saves=1)
        state, shared = self.best(prompt)
        if state is not None and shared > kept and self._io.restore(llm, state):
            self._count(restores=1)

    def _count(self, saves: int = 0, restores: int = 0) -> None:
        with self._lock:
            self.saves += saves
            self.restores += restores

    def _evict(self) -> None:
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Served:
    """What an instance last served: whose request, and its messages."""

    key: str
    messages: Messages


def shared_text(previous: Messages, messages: Messages) -> int:
    """Characters of ``messages`` that ``previous`` starts with, message by message:
    a cheap stand-in for the evaluated tokens two requests share."""
    total = 0
    for old, new in zip(previous, messages, strict=False):
        if old.get("role") != new.get("role"):
            break
        before, after = old.get("content") or "", new.get("content") or ""
        if before != after:
            return total + common_prefix(before, after)
        total += len(after) + 1
    return total


def pick_instance(idle: Sequence[Served | None], key: str, messages: Messages) -> int:
    """The index of the idle instance to serve a request: the one whose last request
    shares the most text with this one, then the one this caller used last, then the
    most recently returned."""
    def score(index: int) -> tuple[int, bool, int]:
        served = idle[index]
        if served is None:
            return (0, False, index)
        return (shared_text(served.messages, messages), served.key == key, index)

    return max(range(len(idle)), key=score)


@dataclass(slots=True)
class PromptReuse:
    """Prompt tokens the model evaluated, against those a kept or restored state
    already held, since the provider started; thread-safe."""

    prompts: int = 0
    prompt_tokens: int = 0
    evaluated: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def reused(self) -> int:
        return self.prompt_tokens - self.evaluated

    def add(self, prompt_tokens: int, evaluated: int) -> None:
        with self._lock:
            self.prompts += 1
            self.prompt_tokens += prompt_tokens
            self.evaluated += evaluated


class LlamaStates:
    """:class:`StateIO` over a ``llama_cpp.Llama``: sequence 0's KV cache and token ids.

    Restoring sets what ``Llama.load_state`` sets (tokens, count, "needs an
    evaluation"), so ``Llama.generate`` then reuses the prefix and re-evaluates at
    least the last prompt token, as after a state of its own.
    """

    def held(self, llm: Any) -> Sequence[int]:
        return list(llm.input_ids[: llm.n_tokens].tolist())

    def save(self, llm: Any) -> CachedState | None:
        lib = importlib.import_module("llama_cpp")
        size = int(lib.llama_state_seq_get_size(llm.ctx, 0))
        if size <= 0 or llm.n_tokens <= 0:
            return None
        data = (ctypes.c_uint8 * size)()
        written = int(lib.llama_state_seq_get_data(llm.ctx, data, size, 0))
        if written <= 0:
            return None
        return CachedState(tuple(self.held(llm)), data, written)

    def restore(self, llm: Any, state: CachedState) -> bool:
        lib = importlib.import_module("llama_cpp")
        memory = lib.llama_get_memory(llm.ctx)
        lib.llama_memory_seq_rm(memory, 0, 0, -1)
        llm.n_tokens = 0
        llm._requires_eval = True
        if int(lib.llama_state_seq_set_data(llm.ctx, state.data, state.nbytes, 0)) <= 0:
            lib.llama_memory_seq_rm(memory, 0, 0, -1)
            return False
        count = len(state.tokens)
        llm.input_ids[:count] = state.tokens
        llm.n_tokens = count
        return True


LLAMA_STATES = LlamaStates()
