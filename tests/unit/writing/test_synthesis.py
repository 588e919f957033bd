"""Synthesis against the scripted model: evidence cited by excerpt id and mapped back to
the samples' own sentences, refusals retried, nothing invented."""

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
from personae.writing.evidence import EvidenceIndex
from personae.writing.prompts import (
    SYNTHESIS_PROMPT_TOKENS,
    select_excerpts,
    synthesis_excerpts,
    synthesis_messages,
)
from personae.writing.synthesis import (
    SYNTHESIS_SCHEMA,
    Citations,
    Refused,
    accept,
    synthesis_schema,
    synthesise,
)

SAMPLES = [
    "Most advice about hiring is wrong. I learned that the hard way, twice.\n"
    "So here is what I do now: I ask one question and I listen.",
    "Nobody reads a memo past the second paragraph. Keep it short. Say the thing.",
    "We shipped the new billing flow on Tuesday. It broke on Wednesday. "
    "By Thursday we knew why, and that is the part worth writing about.",
]
ONBOARDING = Onboarding(name="Dana Reyes", audience="engineering managers",
                        goals=["hire better"], topics=["hiring", "shipping"])
# The excerpts the prompt shows for SAMPLES, in id order (E1 first).
EXCERPTS = ["Most advice about hiring is wrong.", "I learned that the hard way, twice.",
            "So here is what I do now: I ask one question and I listen.",
            "Nobody reads a memo past the second paragraph.", "Keep it short.",
            "Say the thing.", "We shipped the new billing flow on Tuesday.",
            "It broke on Wednesday.",
            "By Thursday we knew why, and that is the part worth writing about."]
IDS = [f"E{n}" for n in range(1, len(EXCERPTS) + 1)]


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
                     "evidence": ["E5", "E2", "E5"]},
        "tones": {"default": "direct", "permitted": ["reflective"],
                  "forbidden": ["enthusiastic"], "evidence": ["E1"]},
        "constraints": [
            {"rule": "always", "text": "keep sentences short", "evidence": ["E8"]},
            {"rule": "never", "text": "Never use exclamation marks",
             "evidence": ["E6", "E4"]},
        ],
    }
    body.update(changes)
    return json.dumps(body)


async def run(llm: ScriptedLLM, max_attempts: int = 3) -> Any:
    return await synthesise(llm, GenerationSettings(), fingerprint=fingerprint(),
                            onboarding=ONBOARDING, samples=SAMPLES,
                            max_attempts=max_attempts)


async def test_cited_ids_are_stored_as_the_excerpts_they_name() -> None:
    llm = ScriptedLLM(model="tiny").queue(answer())

    synthesis = await run(llm)

    assert synthesis.status == "ok" and synthesis.attempts == 1 and synthesis.errors == []
    assert synthesis.identity is not None
    assert synthesis.identity.evidence == ["Keep it short.",
                                           "I learned that the hard way, twice."]
    assert synthesis.tones is not None and synthesis.tones.default == "direct"
    assert synthesis.tones.evidence == ["Most advice about hiring is wrong."]
    assert [(c.text, c.evidence) for c in synthesis.constraints] == [
        ("Always: keep sentences short", ["It broke on Wednesday."]),
        ("Never use exclamation marks",
         ["Say the thing.", "Nobody reads a memo past the second paragraph."])]
    assert synthesis.dropped_claims == 0
    assert (synthesis.provider, synthesis.model) == ("scripted", "tiny")
    settings = llm.requests[0].settings
    assert settings.json_schema == synthesis_schema(IDS) and settings.stream is False
    assert settings.temperature is not None and settings.temperature <= 0.5


async def test_the_prompt_numbers_the_excerpts_the_schema_lets_the_model_cite() -> None:
    llm = ScriptedLLM().queue(answer())

    await run(llm)

    prompt = llm.requests[0].last_user
    assert all(f"[{i}] {text}" in prompt for i, text in zip(IDS, EXCERPTS, strict=True))
    assert "[E10]" not in prompt
    schema = llm.requests[0].settings.json_schema
    assert schema is not None
    cited = schema["properties"]["constraints"]["items"]["properties"]["evidence"]
    assert cited["items"] == {"type": "string", "enum": IDS} and cited["minItems"] == 1


async def test_an_unknown_id_is_refused_then_retried_with_the_reason() -> None:
    unknown = {"text": "A poet.", "evidence": ["E10"]}
    llm = ScriptedLLM().queue(answer(identity=unknown), answer())

    synthesis = await run(llm)

    assert synthesis.status == "ok" and synthesis.attempts == 2
    assert synthesis.errors == [
        "attempt 1: schema: answer.identity.evidence[0] fails enum"]
    assert "fails enum" in llm.requests[1].last_user  # the model is told why
    assert synthesis.identity is not None and synthesis.identity.text != "A poet."


async def test_a_free_text_quote_is_refused_even_when_it_is_in_the_samples() -> None:
    quoted = {"text": "A blunt lead.", "evidence": ["Keep it short. Say the thing."]}
    synthesis = await run(ScriptedLLM().queue(answer(identity=quoted), answer()))

    assert synthesis.attempts == 2
    assert "schema: answer.identity.evidence[0] fails enum" in synthesis.errors[0]


async def test_invalid_json_is_refused_then_retried_with_the_reason() -> None:
    llm = ScriptedLLM().queue('{"identity": {"text": "cut off', answer())

    synthesis = await run(llm)

    assert synthesis.status == "ok" and synthesis.attempts == 2
    assert len(synthesis.errors) == 1 and synthesis.errors[0].startswith(
        "attempt 1: invalid JSON")
    assert "invalid JSON" in llm.requests[1].last_user  # the model is told why


def test_an_excerpt_not_verbatim_in_the_samples_is_never_stored() -> None:
    """The evidence guard stays: should an excerpt ever differ from the samples, the
    claims citing it are dropped (the identity refused), never stored."""
    forged = ["I write poems about the sea.", *EXCERPTS[1:]]  # E1 is not theirs
    cited = Citations(forged, EvidenceIndex(SAMPLES))

    kept = accept(answer(), cited)
    assert kept.tones is None and kept.dropped == 1  # the tones cited E1 only
    with pytest.raises(Refused, match="identity has no evidence"):
        accept(answer(identity={"text": "A poet.", "evidence": ["E1"]}), cited)


@pytest.mark.parametrize(("bad", "reason"), [
    (answer(tones={"default": "grumpy", "permitted": [], "forbidden": [],
                   "evidence": ["E1"]}),
     "schema: answer.tones.default fails enum"),
    (answer(identity={"text": "A blunt lead.", "evidence": []}),
     "schema: answer.identity.evidence fails minItems"),
    (answer(identity={"text": "x" * 201, "evidence": ["E1"]}),
     "schema: answer.identity.text fails maxLength"),
    (answer(constraints=[]).replace('"identity"', '"who"'), "schema: answer fails"),
    (answer(tones={"default": "direct", "permitted": [], "forbidden": ["direct"],
                   "evidence": ["E1"]}),
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


def test_the_schema_converts_to_a_grammar_naming_only_known_tones_and_ids() -> None:
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    gbnf = grammar.json_schema_to_gbnf(json.dumps(synthesis_schema(IDS)))
    assert "root ::=" in gbnf and '\\"sarcastic\\"' in gbnf
    assert '\\"E9\\"' in gbnf and '\\"E10\\"' not in gbnf
    tones = SYNTHESIS_SCHEMA["properties"]["tones"]["properties"]
    assert tones["default"]["enum"] == list(TONES)


def test_the_prompt_fits_the_budget_and_quotes_whole_sentences() -> None:
    long_samples = [" ".join(f"Sentence {n} of a long sample, part {k} of it." for k in range(30))
                    for n in range(20)]
    excerpts = synthesis_excerpts(fingerprint(), ONBOARDING, long_samples)
    messages = synthesis_messages(fingerprint(), ONBOARDING, excerpts,
                                  refused="x" * 160)  # the longest reason kept

    assert sum(approximate_tokens(m.content) for m in messages) <= SYNTHESIS_PROMPT_TOKENS
    assert "Sentence 19 of a long sample" in messages[1].content  # every sample heard
    assert messages[1].content.count("Sentence 0 of") > 1  # and then more of each
    assert f"[E{len(excerpts)}] " in messages[1].content
    assert "go-to words: thing" in messages[1].content
    assert "never uses: very" in messages[1].content
    assert "em dash" not in messages[1].content  # habits never seen are left out
    assert select_excerpts(SAMPLES, 160) == [
        "Most advice about hiring is wrong.",
        "Nobody reads a memo past the second paragraph.",
        "We shipped the new billing flow on Tuesday."]
    # listed sample by sample; too short to stand as a quote, or repeated: left out
    assert select_excerpts(["One two three. Go now. One two three.", "Four five six."],
                           400) == ["One two three.", "Four five six."]


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
