"""Words, sentences and language detection for any language."""

from __future__ import annotations

import pytest

from personae.writing.text import detect_language, sentences, words


def test_words_are_casefolded_and_keep_contractions_without_punctuation() -> None:
    assert words("Don't STOP — it's 3.5 times better!", "en") == [
        "don't", "stop", "it's", "3.5", "times", "better"]


def test_japanese_without_a_segmenter_falls_back_to_runs_of_characters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_segmenter(text: str, language: str) -> list[str]:
        raise ModuleNotFoundError("No module named 'MeCab'", name="MeCab")

    monkeypatch.setattr("personae.writing.text.tokenize", no_segmenter)
    assert words("今日は良い天気ですね。私は学生です。", "ja") == [
        "今日は良い天気ですね", "私は学生です"]


def test_japanese_is_segmented_into_words() -> None:
    assert words("今日は良い天気ですね。", "ja")[:3] == ["今日", "は", "良い"]


def test_sentences_keep_end_marks_and_respect_abbreviations_and_decimals() -> None:
    text = "Mr. Smith paid 3.50 dollars. Then he left! Did he? Well... maybe. J. Doe stayed."
    assert sentences(text) == ["Mr. Smith paid 3.50 dollars.", "Then he left!", "Did he?",
                               "Well... maybe.", "J. Doe stayed."]


def test_an_ellipsis_before_lowercase_does_not_end_a_sentence() -> None:
    assert sentences("I waited... and waited. Done.") == ["I waited... and waited.", "Done."]


def test_line_breaks_end_sentences_and_blank_lines_vanish() -> None:
    assert sentences("Big news\n\n- first item\n- second item") == [
        "Big news", "- first item", "- second item"]


def test_sentences_of_no_text() -> None:
    assert sentences("   \n ") == []


@pytest.mark.parametrize(("text", "language"), [
    ("The committee will publish its findings next week, after the review.", "en"),
    ("Hola, ¿cómo estás? Me llamo Juan y vivo en Madrid con mi familia.", "es"),
    ("नमस्ते, मैं तीना कुलकर्णी हूं और मैं ज्योतिष में विवाह पर सलाह देती हूं।", "hi"),
    ("今日は良い天気ですね。私は東京の大学で勉強している学生です。", "ja"),
])
def test_detect_language_gives_the_tag_and_a_probability(text: str, language: str) -> None:
    detected, probability = detect_language(text)
    assert detected == language
    assert 0.5 < probability <= 1.0


def test_detect_language_of_nothing_is_undetermined() -> None:
    assert detect_language("") == ("und", 0.0)
    assert detect_language("  123 !!") == ("und", 0.0)
