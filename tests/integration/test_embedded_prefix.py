"""Prefix reuse on the real bundled model (SmolLM2-135M via llama.cpp): which prompt
tokens a turn evaluates when sessions interleave on one slot.

Counts, not timings: ``EmbeddedLLM.prompt_reuse`` adds up the prompt tokens each
generation evaluated, read before and after each turn. Every test's system prompts
carry a fresh id, so states left in the process-wide pool by other tests share at
most the chat template's first tokens with them. Skipped like the other real-model
tests when the model cannot run here (``PERSONAE_REQUIRE_MODEL=1`` makes it fail).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from personae.providers.base import ChatMessage, Finished, GenerationSettings, TextDelta
from personae.providers.llama_cpp import EmbeddedLLM
from personae.providers.prefix_cache import LLAMA_STATES

pytestmark = pytest.mark.slow

SETTINGS = GenerationSettings(max_tokens=12, temperature=0)
TEMPLATE_SLACK = 8  # chat-template tokens around a message the count may or may not share

Factory = Callable[..., EmbeddedLLM]


@pytest.fixture
async def make_llm(model_path: Path) -> AsyncIterator[Factory]:
    made: list[EmbeddedLLM] = []

    def make(states: int = 8, parallel: int = 1) -> EmbeddedLLM:
        llm = EmbeddedLLM(model_path, context_window=1024, parallel=parallel,
                          prompt_cache_states=states)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        await llm.aclose()


def persona(name: str, duty: str) -> str:
    """A system prompt of a few hundred tokens, unique to this test run."""
    return (f"[{uuid.uuid4()}] You are {name}. {duty} "
            + " ".join(f"Rule {n}: stay kind, be brief, and answer in English."
                       for n in range(1, 25)))


class Session:
    """One conversation's growing history, one turn at a time."""

    def __init__(self, llm: EmbeddedLLM, key: str, system: str) -> None:
        self.llm, self.key = llm, key
        self.history = [ChatMessage("system", system)]

    async def turn(self, text: str) -> tuple[int, int]:
        """(prompt tokens, prompt tokens evaluated) of this turn."""
        self.history.append(ChatMessage("user", text))
        before = self.llm.prompt_reuse.evaluated
        parts, finished = [], None
        async for event in self.llm.stream(self.history, SETTINGS, session_key=self.key):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, Finished):
                finished = event
        assert finished is not None and parts
        self.history.append(ChatMessage("assistant", "".join(parts)))
        return finished.usage.prompt_tokens, self.llm.prompt_reuse.evaluated - before


async def test_after_another_session_used_the_slot_a_turn_evaluates_only_its_new_tokens(
    make_llm: Factory,
) -> None:
    llm = make_llm()
    ada = Session(llm, "ada", persona("Ada", "You teach Python."))
    mohit = Session(llm, "mohit", persona("Mohit", "You are an astrologer."))

    ada_first, ada_first_evaluated = await ada.turn("What is a list?")
    mohit_first, _ = await mohit.turn("When will I marry?")
    ada_second, ada_second_evaluated = await ada.turn("And a tuple?")

    assert ada_first_evaluated >= ada_first - TEMPLATE_SLACK  # a fresh prompt: all of it
    assert mohit_first > 200
    # Only the last reply's end and the new message: not the system prompt, not turn one.
    assert 0 < ada_second_evaluated <= ada_second - ada_first
    assert ada_second > ada_first  # usage still reports the whole prompt
    assert llm.prompt_states.restores >= 1


async def test_turns_rotating_over_three_sessions_on_one_slot_all_reuse_their_prefix(
    make_llm: Factory,
) -> None:
    llm = make_llm()
    sessions = [Session(llm, name, persona(name, "You help people."))
                for name in ("a", "b", "c")]
    for session in sessions:
        await session.turn("Hello, who are you?")
    for round_ in range(2):
        for session in sessions:
            before = llm.count_tokens(session.history[0].content)
            prompt, evaluated = await session.turn(f"Tell me one more thing ({round_}).")
            assert evaluated < prompt - before  # the system prompt was not evaluated again


async def test_a_new_session_of_the_same_persona_reuses_the_system_prompt(
    make_llm: Factory,
) -> None:
    llm = make_llm()
    system = persona("Ada", "You teach Python.")
    await Session(llm, "first", system).turn("What is a list?")
    await Session(llm, "other", persona("Mohit", "You are an astrologer.")).turn("Hi")

    prompt, evaluated = await Session(llm, "second", system).turn("How do I sort a dict?")

    assert prompt - evaluated >= llm.count_tokens(system)


async def test_with_the_cache_disabled_an_interleaved_turn_evaluates_everything_again(
    make_llm: Factory,
) -> None:
    """The same interleaving as the first test, with no states kept: the baseline."""
    llm = make_llm(states=0)
    ada = Session(llm, "ada", persona("Ada", "You teach Python."))
    mohit = Session(llm, "mohit", persona("Mohit", "You are an astrologer."))
    await ada.turn("What is a list?")
    await mohit.turn("When will I marry?")

    ada_second, evaluated = await ada.turn("And a tuple?")

    assert evaluated >= ada_second - TEMPLATE_SLACK
    assert len(llm.prompt_states) == 0


async def test_sessions_streaming_at_once_go_back_to_their_own_instances(
    make_llm: Factory,
) -> None:
    """Two slots, two sessions at once, no state cache: routing alone keeps each
    session's prefix (taking whichever instance was returned last would swap them
    about half the time)."""
    llm = make_llm(states=0, parallel=2)
    ada = Session(llm, "ada", persona("Ada", "You teach Python."))
    mohit = Session(llm, "mohit", persona("Mohit", "You are an astrologer."))
    firsts = await asyncio.gather(ada.turn("What is a list?"), mohit.turn("When?"))

    for _ in range(2):
        evaluated = llm.prompt_reuse.evaluated  # both turns' together: they overlap
        seconds = await asyncio.gather(ada.turn("And a tuple?"), mohit.turn("Why?"))
        evaluated = llm.prompt_reuse.evaluated - evaluated
        growth = sum(after - before for (before, _), (after, _) in zip(firsts, seconds,
                                                                          strict=True))
        assert 0 < evaluated <= growth
        firsts = seconds


def complete_on(llm: Any, messages: list[dict[str, str]]) -> str:
    reply = llm.create_chat_completion(messages=messages, max_tokens=16, temperature=0)
    return str(reply["choices"][0]["message"]["content"])


async def test_a_restored_state_continues_exactly_as_the_instance_that_saved_it(
    make_llm: Factory,
) -> None:
    """Two instances: one evaluates turn one, the other gets its saved state; both then
    answer turn two with the same greedy text, the second evaluating only new tokens."""
    llm = make_llm()
    await llm.load()
    _, pool = llm.pool_for(None)
    first, second = pool.checkout(), pool.checkout()
    try:
        turn = [{"role": "system", "content": persona("Ada", "You teach Python.")},
                {"role": "user", "content": "What is a list?"}]
        reply = complete_on(first, turn)
        saved = LLAMA_STATES.save(first)
        assert saved is not None and saved.nbytes > 0
        assert LLAMA_STATES.restore(second, saved)
        assert list(LLAMA_STATES.held(second)) == list(LLAMA_STATES.held(first))
        turn += [{"role": "assistant", "content": reply},
                 {"role": "user", "content": "And a tuple?"}]

        assert complete_on(second, turn) == complete_on(first, turn)
        assert second.last_prompt_evaluated == first.last_prompt_evaluated
        assert second.last_prompt_evaluated < second.last_prompt_tokens - len(saved.tokens) + 8
    finally:
        pool.checkin(first)
        pool.checkin(second)
