"""Synthesis and optimisation on the real bundled model (SmolLM2-135M via llama.cpp).

The samples are real human-written prose that ships with every CPython: sections of
the Python Language Reference (``pydoc_data.topics``), grammar and code lines left
out. A model this small is not expected to describe a voice well (measured on two
State of the Union addresses it mostly fails, naming one tone both used and
forbidden); what is checked is the machinery: the grammar holds its answer to the
schema and its evidence to the ids shown, every stored quote is one of the excerpts
shown and verbatim in the samples, a failure is recorded rather than filled in, and
an optimised post comes back with a real validation of its own text. Skipped like
the other real-model tests when the model cannot run here
(``PERSONAE_REQUIRE_MODEL=1`` makes it fail).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from pydoc_data.topics import topics

import pytest
import pytest_asyncio

from personae.personas.schema import PersonaDefinition
from personae.personas.writing_block import Onboarding, SampleSummary, WritingBlock
from personae.providers.base import ChatMessage, GenerationSettings
from personae.providers.llama_cpp import EmbeddedLLM
from personae.providers.streams import complete
from personae.writing.drafting import WritingDone, attempt_settings, optimise
from personae.writing.evidence import normalise
from personae.writing.fingerprint import measure
from personae.writing.platforms import platform
from personae.writing.prompts import synthesis_excerpts
from personae.writing.synthesis import synthesise
from personae.writing.validation import validate

pytestmark = pytest.mark.slow
SHARED_LOOP = pytest.mark.asyncio(loop_scope="module")  # the provider is module-scoped

TOPICS = ("if", "while", "pass", "truth", "break", "continue", "return")
ONBOARDING = Onboarding(name="Language reference", audience="Python programmers",
                        topics=["Python statements"])
DRAFT = ("The while statement runs its suite again and again for as long as the "
         "expression stays true, and a break statement leaves the loop at once without "
         "running the else clause, which is the part most people forget when they read "
         "other people's code for the first time on a busy morning at work.")


def prose(topic: str) -> str:
    """One reference section without its title, grammar rules or code examples."""
    lines = topics[topic].splitlines()[2:]
    return "\n".join(line for line in lines if not line.startswith("   ")).strip()


SAMPLES = [prose(topic) for topic in TOPICS]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def llm(model_path: Path) -> AsyncIterator[EmbeddedLLM]:
    provider = EmbeddedLLM(model_path, context_window=2048, parallel=1)
    yield provider
    await provider.aclose()


def test_the_samples_are_about_six_hundred_words() -> None:
    assert 500 <= sum(len(sample.split()) for sample in SAMPLES) <= 700


@SHARED_LOOP
async def test_synthesis_on_real_samples_is_schema_bound_and_never_invented(
        llm: EmbeddedLLM) -> None:
    fingerprint = measure(SAMPLES)
    synthesis = await synthesise(llm, GenerationSettings(seed=7),
                                 fingerprint=fingerprint, onboarding=ONBOARDING,
                                 samples=SAMPLES, max_attempts=2)

    assert synthesis.attempts >= 1 and synthesis.provider == "embedded"
    # The grammar holds every answer to the schema: no refusal is for its shape (an
    # answer the token limit cut short is refused as cut, not as invalid JSON).
    assert not any("invalid JSON" in e or "schema:" in e for e in synthesis.errors), (
        synthesis.errors)
    if synthesis.status == "ok":
        assert synthesis.identity is not None
        claims = [synthesis.identity, *synthesis.constraints]
        quotes = [q for claim in claims for q in claim.evidence]
        quotes += synthesis.tones.evidence if synthesis.tones else []
        shown = set(synthesis_excerpts(fingerprint, ONBOARDING, SAMPLES))
        assert quotes and set(quotes) <= shown  # whole excerpts, as cited by id
        haystacks = [normalise(sample) for sample in SAMPLES]
        for quote in quotes:
            needle = normalise(quote).strip("\"' .")
            assert any(needle in haystack for haystack in haystacks), quote
    else:
        assert synthesis.status == "failed" and len(synthesis.errors) == 2
        assert synthesis.identity is None and synthesis.tones is None
        assert synthesis.constraints == []
    json.dumps(synthesis.model_dump())  # storable as it is


@SHARED_LOOP
async def test_a_short_optimise_run_for_x_reports_on_the_text_it_returns(
        llm: EmbeddedLLM) -> None:
    fingerprint = measure(SAMPLES)
    block = WritingBlock(onboarding=ONBOARDING, fingerprint=fingerprint,
                         samples=SampleSummary(count=len(SAMPLES),
                                               words=fingerprint.word_count, sha256="0" * 64))
    definition = PersonaDefinition(id="language-reference", name="Language reference",
                                   writing=block)
    x = platform("x")
    events = [event async for event in optimise(
        llm, GenerationSettings(max_tokens=120, seed=7), text=DRAFT, spec=x,
        persona_id="language-reference", version=1, definition=definition,
        max_attempts=2)]

    done = events[-1]
    assert isinstance(done, WritingDone)
    assert 2 <= len(done.attempts) <= 3 and done.attempts[0].text == DRAFT
    expected = validate(done.text, x, persona_id="language-reference", version=1,
                        definition=definition)
    assert done.report == expected
    assert done.meets_limits == expected.meets_limits
    assert ("met every limit" in done.reason) == done.meets_limits


@SHARED_LOOP
async def test_each_attempts_seed_and_temperature_reach_the_model(llm: EmbeddedLLM) -> None:
    """Two attempts' settings give two texts on the same prompt; the same attempt's
    settings give the same text again (the seed, not chance, makes the difference)."""
    messages = [ChatMessage(role="system", content="You write LinkedIn posts."),
                ChatMessage(role="user", content="Write a short post about why "
                            "infrastructure investment creates jobs.")]
    base = GenerationSettings(max_tokens=40)
    first, second, again = [
        (await complete(llm, messages, attempt_settings(base, number))).text
        for number in (1, 2, 1)]
    assert first and second and first != second
    assert again == first
