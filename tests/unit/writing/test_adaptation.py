"""adapt(): the persona's habits under a platform's rules, and the brief a model gets."""

from __future__ import annotations

from personae.personas.schema import PersonaDefinition
from personae.personas.writing_block import (
    Claim,
    Confidence,
    Fingerprint,
    Onboarding,
    SampleSummary,
    SentenceStats,
    Synthesis,
    ToneRange,
    WritingBlock,
)
from personae.writing.adaptation import adapt
from personae.writing.platforms import platform


def _persona(*, words: float = 400, hashtags: float = 8, emoji: float = 5,
             tones: ToneRange | None = None) -> PersonaDefinition:
    fingerprint = Fingerprint(
        language="en", sample_count=10, word_count=4000,
        confidence=Confidence(level="high", words=4000, note="Enough text."),
        sentences=SentenceStats(count=300, mean_words=13.0, median_words=12.0,
                                stdev_words=6.0, p10_words=4.0, p90_words=22.0),
        punctuation={"line_break": 20.0}, words_per_sample=words,
        hashtags_per_sample=hashtags, emoji_per_sample=emoji, avoided_words=["synergy"])
    synthesis = Synthesis(status="ok", tones=tones,
                          identity=Claim(text="A founder who writes plainly."),
                          constraints=[Claim(text="Short paragraphs, no jargon.")])
    block = WritingBlock(onboarding=Onboarding(name="Ana Silva", banned_words=["leverage"]),
                         fingerprint=fingerprint, synthesis=synthesis,
                         samples=SampleSummary(count=10, words=4000, sha256="0" * 64))
    return PersonaDefinition(id="ana", name="Ana", language="en", writing=block)


def _adapt(platform_id: str, definition: PersonaDefinition):  # type: ignore[no-untyped-def]
    return adapt(platform(platform_id), persona_id="ana", version=2, definition=definition)


def test_targets_clamped_to_the_platform() -> None:
    definition = _persona()
    x = _adapt("x", definition).targets
    assert x.max_words == int(280 * 0.85 / 6) and x.words == x.max_words  # 400 words don't fit
    assert x.hashtags == 8  # X has no hard hashtag cap
    assert x.emoji == 2  # X's norm caps the person's 5
    instagram = _adapt("instagram", definition).targets
    assert instagram.hashtags == 5 and instagram.emoji == 5
    linkedin = _adapt("linkedin", definition).targets
    assert linkedin.words == 400 and linkedin.sentence_words == 12.0
    assert linkedin.line_breaks == 8  # 20 per 1,000 words over 400 words


def test_forbidden_tone_stays_forbidden() -> None:
    tones = ToneRange(default="sarcastic", permitted=["reflective", "warm", "provocative"],
                      forbidden=["conversational"])
    tone = _adapt("linkedin", _persona(tones=tones)).tone
    # LinkedIn avoids sarcastic and provocative and prefers conversational, which the
    # person never takes: it stays forbidden and is not offered.
    assert tone.default == "reflective"
    assert tone.permitted == ["warm"]
    assert tone.forbidden == ["conversational"]
    assert any("sarcastic tone is toned down" in a for a in tone.adjustments)


def test_instructions_name_limits_habits_and_nevers() -> None:
    tones = ToneRange(default="warm", permitted=["reflective"], forbidden=["sarcastic"])
    adaptation = _adapt("x", _persona(tones=tones))
    text = adaptation.instructions
    assert "Write a X post as Ana Silva, in en." in text
    assert "at most 280 weighted characters" in text and "every link counts 23" in text
    assert "Never sound sarcastic." in text and "Never use: leverage." in text
    assert "synergy" in text and "A founder who writes plainly." in text
    assert adaptation.from_samples and adaptation.persona_version == 2
    assert _adapt("x", _persona(tones=tones)) == adaptation  # deterministic


def test_without_a_writing_block_platform_rules_only() -> None:
    definition = PersonaDefinition(id="bob", name="Bob", language="en")
    adaptation = _adapt("linkedin", definition)
    assert not adaptation.from_samples
    assert adaptation.targets.words == platform("linkedin").typical_words
    assert adaptation.targets.hashtags == 3
    assert adaptation.tone.default is None
    assert "no writing samples" in adaptation.instructions
    assert 'the first 210 show before "see more"' in adaptation.instructions


def test_cjk_word_target_under_x_weights() -> None:
    definition = _persona().model_copy(update={"language": "ja"})
    assert _adapt("x", definition).targets.max_words == int(280 * 0.85 / 4)
