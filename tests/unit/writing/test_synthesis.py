"""Synthesis against the scripted model: evidence checked, refusals retried, nothing invented."""

from __future__ import annotations

import json
from typing import Any

import pytest

from personae.errors import InvalidInput, ProviderTimeout
from personae.personas.writing_block import (
    TONES,
    Confidence,
    Fingerprint,
    Marker,
    Onboarding,
    SentenceStats,
)
from personae.providers.base import GenerationSettings, approximate_tokens
from personae.providers.fake.scripted import ScriptedLLM
from personae.writing.prompts import (
    SYNTHESIS_PROMPT_TOKENS,
    select_excerpts,
    synthesis_messages,
)
from personae.writing.synthesis import SYNTHESIS_SCHEMA, synthesise

SAMPLES = [
    "Most advice about hiring is wrong. I learned that the hard way, twice.\n"
    "So here is what I do now: I ask one question and I listen.",
    "Nobody reads a memo past the second paragraph. Keep it short. Say the thing.",
    "We shipped the new billing flow on Tuesday. It broke on Wednesday. "
    "By Thursday we knew why, and that is the part worth writing about.",
]
ONBOARDING = Onboarding(name="Dana Reyes", audience="engineering managers",
                        goals=["hire better"], topics=["hiring", "shipping"])


def fingerprint() -> Fingerprint:
    return Fingerprint(
        language="en", sample_count=3, word_count=70,
        confidence=Confidence(level="low", words=70, note="only 70 words; 2,500 help"),
        sentences=SentenceStats(count=9, mean_words=7.8, median_words=7, stdev_words=3,
                                p10_words=3, p90_words=13, declarative=0.9, fragment=0.1),
        go_to_words=[Marker(text="thing", count=1, per_1000=14.3, ratio=5.0)],
        avoided_words=["very"], punctuation={"colon": 14.3, "em_dash": 0.0},
        readability={"flesch_reading_ease": 78.2})


def answer(**changes: Any) -> str:
    body: dict[str, Any] = {
        "identity": {"text": "A blunt engineering lead who writes short, plain posts.",
                     "evidence": ["Keep it short. Say the thing.",
                                  "I learned that the hard way, twice."]},
        "tones": {"default": "direct", "permitted": ["reflective"],
                  "forbidden": ["enthusiastic"],
                  "evidence": ["Most advice about hiring is wrong."]},
        "constraints": [
            {"rule": "always", "text": "keep sentences short",
             "evidence": ["It broke on Wednesday."]},
            {"rule": "never", "text": "use exclamation marks",
             "evidence": ["I love exclamation marks so much"]},  # not in the samples
        ],
    }
    body.update(changes)
    return json.dumps(body)


async def run(llm: ScriptedLLM, max_attempts: int = 3) -> Any:
    return await synthesise(llm, GenerationSettings(), fingerprint=fingerprint(),
                            onboarding=ONBOARDING, samples=SAMPLES,
                            max_attempts=max_attempts)


async def test_a_valid_answer_is_kept_with_its_evidence_and_unfounded_claims_dropped() -> None:
    llm = ScriptedLLM(model="tiny").queue(answer())

    synthesis = await run(llm)

    assert synthesis.status == "ok" and synthesis.attempts == 1 and synthesis.errors == []
    assert synthesis.identity is not None
    assert synthesis.identity.evidence == ["Keep it short. Say the thing.",
                                           "I learned that the hard way, twice."]
    assert synthesis.tones is not None and synthesis.tones.default == "direct"
    assert [c.text for c in synthesis.constraints] == ["Always: keep sentences short"]
    assert synthesis.dropped_claims == 1
    assert (synthesis.provider, synthesis.model) == ("scripted", "tiny")
    settings = llm.requests[0].settings
    assert settings.json_schema == SYNTHESIS_SCHEMA and settings.stream is False
    assert settings.temperature is not None and settings.temperature <= 0.5


async def test_invalid_json_is_refused_then_retried_with_the_reason() -> None:
    llm = ScriptedLLM().queue('{"identity": {"text": "cut off', answer())

    synthesis = await run(llm)

    assert synthesis.status == "ok" and synthesis.attempts == 2
    assert len(synthesis.errors) == 1 and synthesis.errors[0].startswith(
        "attempt 1: invalid JSON")
    assert "invalid JSON" in llm.requests[1].last_user  # the model is told why


async def test_an_identity_without_verbatim_evidence_refuses_the_attempt() -> None:
    made_up = {"text": "A poet.", "evidence": ["I write poems about the sea"]}
    llm = ScriptedLLM().queue(answer(identity=made_up), answer())

    synthesis = await run(llm)

    assert synthesis.status == "ok" and synthesis.attempts == 2
    assert "identity has no evidence quote" in synthesis.errors[0]
    assert "poems" not in synthesis.errors[0]


async def test_tones_without_evidence_are_dropped_not_defaulted() -> None:
    tones = {"default": "calm", "permitted": [], "forbidden": [],
             "evidence": ["a quote nobody wrote"]}
    synthesis = await run(ScriptedLLM().queue(answer(tones=tones)))

    assert synthesis.status == "ok" and synthesis.tones is None
    assert synthesis.dropped_claims == 2


@pytest.mark.parametrize(("bad", "reason"), [
    (answer(tones={"default": "grumpy", "permitted": [], "forbidden": [],
                   "evidence": ["Keep it short. Say the thing."]}),
     "schema: answer.tones.default fails enum"),
    (answer(constraints=[]).replace('"identity"', '"who"'), "schema: answer fails"),
    (answer(tones={"default": "direct", "permitted": [], "forbidden": ["direct"],
                   "evidence": ["Keep it short. Say the thing."]}),
     "tones both used and forbidden: direct"),
    ("", "empty answer"),
])
async def test_three_refused_answers_fail_with_every_reason_and_nothing_invented(
        bad: str, reason: str) -> None:
    llm = ScriptedLLM().queue(bad, bad, bad)

    synthesis = await run(llm)

    assert synthesis.status == "failed" and synthesis.attempts == 3
    assert synthesis.identity is None and synthesis.tones is None
    assert synthesis.constraints == []
    assert len(synthesis.errors) == 3
    assert all(reason in error for error in synthesis.errors), synthesis.errors
    assert llm.pending == 0


async def test_a_provider_failure_counts_as_an_attempt() -> None:
    llm = ScriptedLLM().queue(ProviderTimeout("scripted", "took too long", retryable=True),
                              answer())

    synthesis = await run(llm, max_attempts=2)

    assert synthesis.status == "ok" and synthesis.attempts == 2
    assert synthesis.errors == ["attempt 1: provider error: scripted: took too long"]


async def test_max_attempts_bounds_the_calls() -> None:
    llm = ScriptedLLM(when_empty="fail").queue("nope", "nope")

    synthesis = await run(llm, max_attempts=2)

    assert synthesis.status == "failed" and len(llm.requests) == 2


def test_the_schema_converts_to_a_grammar_and_names_only_known_tones() -> None:
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    gbnf = grammar.json_schema_to_gbnf(json.dumps(SYNTHESIS_SCHEMA))
    assert "root ::=" in gbnf and '\\"sarcastic\\"' in gbnf
    tones = SYNTHESIS_SCHEMA["properties"]["tones"]["properties"]
    assert tones["default"]["enum"] == list(TONES)


def test_the_prompt_fits_the_budget_and_quotes_whole_sentences() -> None:
    long_samples = [f"Sentence {n} of a long sample, with a few more words in it. " * 30
                    for n in range(20)]
    messages = synthesis_messages(fingerprint(), ONBOARDING, long_samples)

    assert sum(approximate_tokens(m.content) for m in messages) <= SYNTHESIS_PROMPT_TOKENS
    assert "Sentence 19 of a long sample" in messages[1].content  # every sample heard
    assert messages[1].content.count("Sentence 0 of") > 1  # and then more of each
    assert "go-to words: thing" in messages[1].content
    assert "never uses: very" in messages[1].content
    assert "em dash" not in messages[1].content  # habits never seen are left out
    excerpts = select_excerpts(SAMPLES, 160)
    assert excerpts == ["Most advice about hiring is wrong.",
                        "Nobody reads a memo past the second paragraph.",
                        "We shipped the new billing flow on Tuesday."]


async def test_an_answer_cut_at_the_token_limit_is_refused_as_cut() -> None:
    llm = ScriptedLLM().queue(answer(), answer())

    synthesis = await synthesise(llm, GenerationSettings(max_tokens=20),
                                 fingerprint=fingerprint(), onboarding=ONBOARDING,
                                 samples=SAMPLES, max_attempts=2)

    assert synthesis.status == "failed"
    assert synthesis.errors == ["attempt 1: answer cut off at the token limit (20)",
                                "attempt 2: answer cut off at the token limit (20)"]


@pytest.mark.parametrize("attempts", [0, 6])
async def test_max_attempts_outside_one_to_five_is_refused(attempts: int) -> None:
    with pytest.raises(InvalidInput, match="max_attempts"):
        await run(ScriptedLLM(), max_attempts=attempts)
