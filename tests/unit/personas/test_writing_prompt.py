"""A persona's ``writing`` block: the "Writing voice" prompt section, and the block in
persona files (JSON/YAML out and back in) but not in Character Cards."""

from __future__ import annotations

import json
from typing import Any

from personae.personas.prompt import build_system_prompt
from personae.personas.schema import PersonaDefinition
from personae.personas.transfer import export_definition, import_bytes
from personae.personas.writing_block import (
    Claim,
    Confidence,
    Fingerprint,
    Marker,
    Onboarding,
    SampleSummary,
    SentenceStats,
    StyleProfile,
    Synthesis,
    ToneRange,
    WritingBlock,
)


def block(status: str = "ok", **fingerprint: Any) -> WritingBlock:
    measured = {
        "language": "en", "sample_count": 4, "word_count": 1200,
        "confidence": Confidence(level="low", words=1200, note="little text"),
        "sentences": SentenceStats(count=80, mean_words=13.2, median_words=12,
                                   stdev_words=4, p10_words=6, p90_words=20),
        "go_to_words": [Marker(text="honestly", count=9, per_1000=7.5, ratio=12.0)],
        "go_to_phrases": [Marker(text="here is the thing", count=3, per_1000=2.5)],
        "avoided_words": ["very"],
        "punctuation": {"em_dash": 11.0, "exclamation": 0.0, "ellipsis": 0.5, "emoji": 0.0},
        "hashtags_per_sample": 1.0,
        "profile": StyleProfile(features={"w:the": 0.0612, "c:ing": 0.0123},
                                baseline_mean=0.4321, baseline_stdev=0.0987),
        **fingerprint}
    synthesis = Synthesis(
        status=status, identity=Claim(text="A blunt engineering lead.", evidence=["x y z"]),
        tones=ToneRange(default="direct", permitted=["reflective"], forbidden=["sarcastic"]),
        constraints=[Claim(text="Short declarative sentences.")]) if status == "ok" \
        else Synthesis(status="failed", attempts=3, errors=["attempt 1: not JSON"])
    return WritingBlock(onboarding=Onboarding(name="Sam", banned_words=["synergy"]),
                        fingerprint=Fingerprint(**measured), synthesis=synthesis,
                        samples=SampleSummary(count=4, words=1200, sha256="a" * 64))


def persona(writing: WritingBlock | None = None) -> PersonaDefinition:
    return PersonaDefinition(id="sam", name="Sam", description="Sam's voice.",
                             system_prompt="Write as Sam.", writing=writing)


def section(prompt: str) -> str:
    start = prompt.index("## Writing voice")
    end = prompt.find("\n## ", start + 1)
    return prompt[start:end if end > 0 else None]


def test_the_section_tells_identity_tones_constraints_and_measured_habits() -> None:
    text = section(build_system_prompt(persona(block())))
    assert "A blunt engineering lead." in text
    assert "Tone: default direct; may also be reflective; never sarcastic." in text
    assert "- Short declarative sentences." in text
    assert "Never write these words: synergy." in text
    assert "- Sentences: typically 12 words (median)." in text
    assert "- Go-to words: honestly." in text
    assert '- Go-to phrases: "here is the thing".' in text
    assert "- Words they never use: very." in text
    assert "- Often uses em dashes (11 per 1,000 words)." in text
    assert "- Never uses exclamation marks, emoji." in text


def test_the_numeric_profile_never_reaches_the_prompt() -> None:
    prompt = build_system_prompt(persona(block()))
    for number in ("0.0612", "0.0123", "0.4321", "0.0987", "w:the", "c:ing", "13.2"):
        assert number not in prompt


def test_a_failed_synthesis_shows_only_what_was_measured() -> None:
    text = section(build_system_prompt(persona(block(status="failed"))))
    assert "blunt" not in text and "Tone:" not in text and "not JSON" not in text
    assert "- Go-to words: honestly." in text


def test_never_is_not_claimed_from_little_text() -> None:
    text = section(build_system_prompt(persona(block(word_count=200))))
    assert "Never uses" not in text


def test_a_persona_without_the_block_has_no_section_and_templates_see_no_key() -> None:
    assert "Writing voice" not in build_system_prompt(persona())
    keys = "{% for key in sections %}{{ key }};{% endfor %}"
    plain = persona().model_copy(update={"prompt_template": keys})
    writer = persona(block()).model_copy(update={"prompt_template": keys})
    assert "writing" not in build_system_prompt(plain).split(";")
    assert build_system_prompt(writer).split(";").index("writing") == 5  # before language


def test_the_section_comes_before_the_language_section() -> None:
    prompt = build_system_prompt(persona(block()))
    assert prompt.index("## Writing voice") < prompt.index("## Language")


def test_persona_files_carry_the_block_both_ways() -> None:
    definition = persona(block())
    for fmt in ("json", "yaml"):
        content, _, name = export_definition(definition, fmt)
        (back,) = import_bytes(content, name).definitions
        assert back.writing == definition.writing
        assert back.content_hash() == definition.content_hash()


def test_character_cards_leave_the_block_out() -> None:
    content, _, _ = export_definition(persona(block()), "card")
    card = json.loads(content)
    assert "writing" not in json.dumps(card.get("data", {}).get("extensions", {}))
    assert card["data"]["name"] == "Sam"
