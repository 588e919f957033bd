"""The embedded model's prefix reuse without a model: the bounded state cache, what it
saves and restores around a prompt, and which idle instance a request is routed to.

Instances are stand-ins holding a list of "evaluated" token ids; ``FakeStates`` plays
llama.cpp's part (saving copies the tokens, restoring puts them back).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from personae.config import Settings
from personae.providers.llama_pools import ModelKey, ModelPool
from personae.providers.prefix_cache import (
    CachedState,
    PromptReuse,
    Served,
    StateCache,
    common_prefix,
    pick_instance,
    shared_text,
)


class FakeInstance:
    def __init__(self, name: str = "", tokens: Sequence[int] = ()) -> None:
        self.name = name
        self.tokens = list(tokens)


class FakeStates:
    """Saves and restores a FakeInstance's tokens, counting both."""

    def __init__(self) -> None:
        self.saved: list[tuple[int, ...]] = []
        self.restored: list[tuple[int, ...]] = []

    def held(self, llm: Any) -> Sequence[int]:
        return list(llm.tokens)

    def save(self, llm: Any) -> CachedState | None:
        tokens = tuple(llm.tokens)
        self.saved.append(tokens)
        return state(*tokens)

    def restore(self, llm: Any, cached: CachedState) -> bool:
        self.restored.append(cached.tokens)
        llm.tokens = list(cached.tokens)
        return True


def state(*tokens: int) -> CachedState:
    return CachedState(tuple(tokens), data=None, nbytes=len(tokens) * 10)


SYSTEM_A = list(range(100, 140))  # persona A's system prompt
SYSTEM_B = list(range(200, 240))


def test_common_prefix_counts_the_shared_leading_tokens() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([9], [1]) == 0
    assert common_prefix("abcdef", "abcxyz") == 3


@pytest.mark.parametrize("differs_at", [0, 1, 617, 998, 999])
def test_common_prefix_finds_the_first_difference_in_long_sequences(differs_at: int) -> None:
    held = tuple(range(1000))
    prompt = [*range(differs_at), -1, *range(differs_at + 1, 1200)]  # a list, as tokenized
    assert common_prefix(held, prompt) == differs_at
    assert common_prefix(prompt, held) == differs_at


def test_the_cache_keeps_at_most_capacity_states_dropping_the_least_recently_used() -> None:
    cache = StateCache(2, FakeStates())
    cache.put(state(1, 1))
    cache.put(state(2, 2))
    assert cache.best([1, 1, 5])[1] == 2  # a hit: (1, 1) is now the most recently used
    cache.put(state(3, 3))

    assert len(cache) == 2
    assert cache.best([2, 2])[0] is None  # (2, 2) went first: least recently used
    assert cache.best([1, 1])[1] == 2
    assert cache.best([3, 3])[1] == 2
    assert cache.nbytes == 40


def test_a_state_replaces_the_states_it_extends_but_not_its_siblings() -> None:
    cache = StateCache(8, FakeStates())
    cache.put(state(*SYSTEM_A, 1))
    cache.put(state(*SYSTEM_A, 2))
    cache.put(state(*SYSTEM_A, 1, 7, 8))

    assert len(cache) == 2
    found, shared = cache.best([*SYSTEM_A, 1, 7, 8, 9])
    assert found is not None and found.tokens == (*SYSTEM_A, 1, 7, 8)
    assert shared == len(SYSTEM_A) + 3


def test_shrinking_the_cache_drops_the_oldest_states_and_zero_disables_it() -> None:
    cache = StateCache(4, FakeStates())
    for n in range(4):
        cache.put(state(n))
    cache.resize(1)
    assert len(cache) == 1 and cache.best([3])[1] == 1

    cache.resize(0)
    cache.put(state(5))
    assert len(cache) == 0


def test_a_prefix_about_to_be_overwritten_is_saved_then_restored_for_its_next_turn() -> None:
    states = FakeStates()
    cache = StateCache(8, states)
    llm = FakeInstance(tokens=[*SYSTEM_A, 1, 2, 3])  # session A's first turn and reply

    cache.prepare(llm, [*SYSTEM_B, 4])  # session B takes the instance
    assert states.saved == [(*SYSTEM_A, 1, 2, 3)]
    assert states.restored == []  # nothing cached shares B's prompt
    llm.tokens = [*SYSTEM_B, 4, 5]  # B's turn is evaluated

    cache.prepare(llm, [*SYSTEM_A, 1, 2, 3, 6])  # A's second turn
    assert states.restored == [(*SYSTEM_A, 1, 2, 3)]
    assert llm.tokens == [*SYSTEM_A, 1, 2, 3]  # only token 6 is left to evaluate
    assert states.saved[-1] == (*SYSTEM_B, 4, 5)
    assert (cache.saves, cache.restores) == (2, 1)


def test_a_new_session_of_the_same_persona_starts_from_its_system_prompt() -> None:
    states = FakeStates()
    cache = StateCache(8, states)
    cache.put(state(*SYSTEM_A, 1, 2))
    llm = FakeInstance(tokens=[*SYSTEM_B, 4])

    cache.prepare(llm, [*SYSTEM_A, 9])

    assert llm.tokens == [*SYSTEM_A, 1, 2]  # llama.cpp then keeps the shared SYSTEM_A
    assert common_prefix(llm.tokens, [*SYSTEM_A, 9]) == len(SYSTEM_A)


def test_nothing_is_saved_or_restored_when_the_instance_holds_the_prefix() -> None:
    states = FakeStates()
    cache = StateCache(8, states)
    cache.put(state(*SYSTEM_A))
    llm = FakeInstance(tokens=[*SYSTEM_A, 1, 2])

    cache.prepare(llm, [*SYSTEM_A, 1, 2, 3])  # the same session's next turn

    assert (states.saved, states.restored) == ([], [])


def test_a_state_the_cache_already_holds_is_not_saved_again() -> None:
    states = FakeStates()
    cache = StateCache(8, states)
    cache.put(state(*SYSTEM_A, 1, 2))
    llm = FakeInstance(tokens=[*SYSTEM_A, 1])  # restored from it, nothing evaluated since

    cache.prepare(llm, [*SYSTEM_B])

    assert states.saved == []


def test_a_disabled_cache_neither_saves_nor_restores() -> None:
    states = FakeStates()
    cache = StateCache(0, states)
    llm = FakeInstance(tokens=[*SYSTEM_A, 1])
    cache.prepare(llm, [*SYSTEM_B])
    cache.prepare(llm, [*SYSTEM_A, 1, 2])
    assert (states.saved, states.restored, len(cache)) == ([], [], 0)


def test_concurrent_puts_keep_the_bound() -> None:
    cache = StateCache(5, FakeStates())

    def fill(start: int) -> None:
        for n in range(start, start + 200):
            cache.put(state(n, n))
            cache.best([n])

    threads = [threading.Thread(target=fill, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 5


# -- routing ---------------------------------------------------------------------

def messages(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in pairs]


PERSONA_A = ("system", "You are Ada, a patient Python tutor.")
PERSONA_B = ("system", "You are Mohit, an astrologer.")


def test_shared_text_follows_the_messages_in_order() -> None:
    first = messages(PERSONA_A, ("user", "hi"))
    later = messages(PERSONA_A, ("user", "hi"), ("assistant", "hello"), ("user", "more"))
    assert shared_text(first, later) == len(PERSONA_A[1]) + 1 + len("hi") + 1
    assert shared_text(messages(PERSONA_B), later) == len("You are ")
    assert shared_text(messages(("user", PERSONA_A[1])), later) == 0  # another role


def test_a_request_goes_to_the_idle_instance_holding_its_history() -> None:
    turn_1 = messages(PERSONA_A, ("user", "What is a list?"))
    turn_2 = [*turn_1, *messages(("assistant", "A list is..."), ("user", "And a dict?"))]
    idle = [Served("a", turn_1), Served("b", messages(PERSONA_B, ("user", "When?"))), None]
    assert pick_instance(idle, "a", turn_2) == 0


def test_a_new_session_goes_to_an_instance_with_its_personas_prompt() -> None:
    idle = [Served("a", messages(PERSONA_A, ("user", "x"))),
            Served("b", messages(PERSONA_B, ("user", "y")))]
    assert pick_instance(idle, "new", messages(PERSONA_B, ("user", "z"))) == 1


def test_between_equals_the_callers_own_instance_wins_then_the_latest() -> None:
    same = messages(PERSONA_A)
    assert pick_instance([Served("a", same), Served("b", same)], "a", same) == 0
    assert pick_instance([None, None], "a", same) == 1


class FakePool(ModelPool):
    """A pool whose "instances" are FakeInstance objects, created in order."""

    def __init__(self) -> None:
        super().__init__(ModelKey(Path("fake.gguf"), 512, None))
        self.created = 0

    def _create(self) -> Any:
        self.created += 1
        return FakeInstance(f"i{self.created}")


def test_the_pool_routes_each_session_back_to_its_instance() -> None:
    pool = FakePool()
    a_turn = messages(PERSONA_A, ("user", "first"))
    b_turn = messages(PERSONA_B, ("user", "first"))
    first, second = pool.checkout("a", a_turn), pool.checkout("b", b_turn)
    pool.checkin(first)
    pool.checkin(second)  # the most recently returned: a plain pop would take it

    again = pool.checkout("a", [*a_turn, *messages(("assistant", "ok"), ("user", "next"))])

    assert again is first
    assert pool.checkout("b", [*b_turn, *messages(("user", "next"))]) is second
    assert pool.created == 2
    assert pool.states.capacity == 8  # each pool has its own bounded cache


def test_prompt_reuse_adds_up_what_was_evaluated_and_reused() -> None:
    reuse = PromptReuse()
    reuse.add(600, 600)
    reuse.add(650, 30)
    assert (reuse.prompts, reuse.prompt_tokens, reuse.evaluated, reuse.reused) == (
        2, 1250, 630, 620)


def test_the_cache_size_setting_defaults_to_eight_and_zero_disables_it() -> None:
    assert Settings().embedded_prompt_cache_states == 8
    assert Settings(embedded_prompt_cache_states=0).embedded_prompt_cache_states == 0
    with pytest.raises(ValidationError, match="embedded_prompt_cache_states"):
        Settings(embedded_prompt_cache_states=-1)
