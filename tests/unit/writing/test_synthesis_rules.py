"""Rules and identities that say nothing of the person's own are not stored: bare
"never", the prompt's facts copied back, repeats, always-and-never, a foreign script,
an identity that is only the name (seen from the small embedded model)."""

from __future__ import annotations

import json
from typing import Any

from personae.personas.writing_block import Onboarding
from personae.providers.base import GenerationSettings
from personae.providers.fake.scripted import ScriptedLLM
from personae.writing.fingerprint import measure
from personae.writing.prompts import fingerprint_facts
from personae.writing.synthesis import synthesise
from tests.support.writing_samples import IDENTITY, SAMPLES

FINGERPRINT = measure(SAMPLES, language="en")
ONBOARDING = Onboarding(name="Sam Lee", audience="engineers", topics=["shipping"])
KEPT = {"rule": "always", "text": "Opens with a short, blunt claim.", "evidence": ["E1"]}


def answer(constraints: list[dict[str, Any]], identity: str = IDENTITY) -> str:
    return json.dumps({
        "identity": {"text": identity, "evidence": ["E1"]},
        "tones": {"default": "direct", "permitted": [], "forbidden": [], "evidence": ["E4"]},
        "constraints": constraints})


def rule(kind: str, text: str) -> dict[str, Any]:
    return {"rule": kind, "text": text, "evidence": ["E4"]}


async def synthesis_of(*answers: str, max_attempts: int = 3) -> Any:
    return await synthesise(ScriptedLLM().queue(*answers), GenerationSettings(),
                            fingerprint=FINGERPRINT, onboarding=ONBOARDING, samples=SAMPLES,
                            max_attempts=max_attempts)


async def test_rules_with_nothing_of_their_own_are_dropped_with_their_reason() -> None:
    result = await synthesis_of(answer([rule("never", "never uses"), rule("always", "always"),
                                        rule("never", "never"), KEPT]))
    assert result.status == "ok"
    assert [c.text for c in result.constraints] == ["Always: Opens with a short, blunt claim."]
    assert result.dropped_claims == 3
    assert sum("fewer than 3 words of its own" in e for e in result.errors) == 3


async def test_the_prompts_own_measurements_echoed_back_are_dropped() -> None:
    first_line = fingerprint_facts(FINGERPRINT)[0].removeprefix("- ")[:150]  # "163 words.."
    numbers = f"No sentence is longer than {FINGERPRINT.word_count:,} words in all"
    result = await synthesis_of(answer([rule("always", first_line), rule("never", numbers),
                                        KEPT]))
    assert [c.text for c in result.constraints] == ["Always: Opens with a short, blunt claim."]
    assert sum("repeats the measured facts" in e for e in result.errors) == 2


async def test_repeats_and_a_rule_both_always_and_never_are_dropped() -> None:
    result = await synthesis_of(answer([
        KEPT, rule("always", "opens with a short blunt claim"),
        rule("always", "Ends every post with a question."),
        rule("never", "Never: ends every post with a question")]))
    assert [c.text for c in result.constraints] == ["Always: Opens with a short, blunt claim."]
    assert result.dropped_claims == 3
    assert any("the same as an earlier rule" in e for e in result.errors)
    assert sum("both an always and a never rule" in e for e in result.errors) == 2


async def test_a_rule_in_a_script_the_person_does_not_write_in_is_dropped() -> None:
    result = await synthesis_of(answer([rule("always", "Cites authorship attribution研究 "
                                                       "studies"), KEPT]))
    assert len(result.constraints) == 1 and result.dropped_claims == 1
    assert any("script the person does not use (CJK)" in e for e in result.errors)


async def test_an_identity_that_is_only_the_name_is_refused_then_fails_honestly() -> None:
    only_name = answer([KEPT], identity="Sam Lee.")
    retried = await synthesis_of(only_name, answer([KEPT]))
    assert retried.status == "ok" and retried.attempts == 2
    assert "identity says nothing beyond the name" in retried.errors[0]
    failed = await synthesis_of(only_name, answer([KEPT], identity="Sam Lee, writer"),
                                max_attempts=2)
    assert failed.status == "failed" and failed.identity is None and failed.constraints == []
    assert len(failed.errors) == 2
