"""The fingerprint of samples, measured deterministically."""

from __future__ import annotations

import pytest

from personae.writing.fingerprint import (
    PUNCTUATION_KEYS,
    confidence,
    first_person_rate,
    measure,
    measure_draft,
)
from personae.writing.markers import avoided_words, mtld

POST = (
    "I'm launching something new today — and I can't wait to show you! 🚀\n"
    "Here is what we built:\n"
    "- a faster editor\n"
    "- a calmer inbox\n"
    "Try it at https://example.com/launch and tell @maria what you think. #launch #product"
)


def test_measure_draft_counts_the_marks_of_a_post() -> None:
    draft = measure_draft(POST, language="en")
    assert draft.language == "en"
    assert draft.hashtags == ["#launch", "#product"]
    assert draft.mentions == ["@maria"]
    assert draft.urls == ["https://example.com/launch"]
    assert draft.emoji_count == 1
    # URLs and mentions are not words; hashtags are: 12 + 5 + 3 + 3 + 8 + 2.
    assert draft.word_count == 33
    assert draft.sentence_count == 6  # each line ends one; the lone emoji is not one
    per_word = 1000 / draft.word_count
    assert draft.punctuation["em_dash"] == pytest.approx(per_word, abs=0.01)
    assert draft.punctuation["list_item"] == pytest.approx(2 * per_word, abs=0.01)
    assert draft.punctuation["line_break"] == pytest.approx(4 * per_word, abs=0.01)
    assert draft.punctuation["colon"] == pytest.approx(per_word, abs=0.01)  # not the URL's
    assert set(draft.punctuation) == set(PUNCTUATION_KEYS)


def test_sentence_lengths_and_types() -> None:
    text = "One two three four five. Is this six words long? Wow! Short one."
    stats = measure([text], language="en").sentences
    assert stats.count == 4
    assert stats.mean_words == pytest.approx((5 + 5 + 1 + 2) / 4)
    assert stats.median_words == 3.5
    assert (stats.declarative, stats.question, stats.exclamation, stats.fragment) == (
        0.25, 0.25, 0.25, 0.25)


def test_contractions_and_first_person_are_per_1000_words() -> None:
    text = "I'm sure we'll go. They don't know my plan. The plan is simple."
    fingerprint = measure([text], language="en")
    assert fingerprint.word_count == 13
    assert fingerprint.contractions_per_1000 == pytest.approx(3000 / 13, abs=0.01)
    assert fingerprint.first_person_per_1000 == pytest.approx(3000 / 13, abs=0.01)  # i'm we'll my
    assert first_person_rate(["ich", "bin", "hier"], "de") == pytest.approx(333.33)
    assert first_person_rate(["x"], "tlh") == 0.0


def test_per_sample_measures() -> None:
    fingerprint = measure([POST, "Just one line here #one 😀😀", "Nothing else to add today."],
                          language="en")
    assert fingerprint.sample_count == 3
    assert fingerprint.words_per_sample == 5.0
    assert fingerprint.hashtags_per_sample == 1.0
    assert fingerprint.emoji_per_sample == 1.0


@pytest.mark.parametrize(("text", "language"), [
    ("Hola a todos. Hoy quiero contaros algo importante sobre nuestro proyecto. ¡Gracias!", "es"),
    ("नमस्ते दोस्तों। आज मैं आपको अपनी नई किताब के बारे में बताना चाहती हूं। धन्यवाद!", "hi"),
    ("こんにちは。今日は新しいプロジェクトについてお話しします。ありがとうございました！", "ja"),
])
def test_other_languages_are_measured(text: str, language: str) -> None:
    fingerprint = measure([text])
    assert fingerprint.language == language
    assert fingerprint.word_count > 0
    assert fingerprint.sentences.count >= 2
    assert fingerprint.confidence.level == "low"


def test_spanish_readability_uses_its_own_formula_and_japanese_has_none() -> None:
    assert "flesch_reading_ease" in measure(["Hola a todos. Hoy es un buen día."],
                                            language="es").readability
    assert measure(["今日は良い天気ですね。"], language="ja").readability == {}


def test_english_readability_works_offline() -> None:
    text = "The cat sat on the mat. It was happy there."
    readability = measure([text], language="en").readability
    assert readability["flesch_reading_ease"] > 80
    assert readability["flesch_kincaid_grade"] < 4


def test_measure_is_deterministic() -> None:
    samples = [POST, "Another sample with em dashes — many — and questions? Yes."] * 20
    assert measure(samples).model_dump() == measure(list(samples)).model_dump()


@pytest.mark.parametrize(("words", "level"), [(0, "low"), (2499, "low"), (2500, "medium"),
                                              (4999, "medium"), (5000, "high")])
def test_confidence_levels(words: int, level: str) -> None:
    result = confidence(words)
    assert result.level == level
    assert f"{words:,} words" in result.note
    assert "2,500-5,000" in result.note


def test_avoided_words_are_common_words_the_text_never_uses() -> None:
    tokens = ["cats", "like", "fish", "and", "dogs", "like", "bones", "and", "birds", "like",
              "seeds"] * 120
    avoided = avoided_words(tokens, "en")
    assert "the" in avoided and "of" in avoided
    assert "and" not in avoided
    assert avoided_words(tokens[:500], "en") == []  # too short to mean anything


def test_go_to_words_are_distinctive_against_the_reference() -> None:
    text = ("Our synergy drives outcomes. Synergy matters to me. "
            "I believe synergy and focus win. The team loves focus. ") * 3
    go_to = measure([text], language="en").go_to_words
    assert go_to[0].text == "synergy"
    assert go_to[0].count == 9
    assert go_to[0].ratio is not None and go_to[0].ratio > 100
    assert all(marker.text not in {"the", "and", "to"} for marker in go_to)


def test_a_language_without_a_reference_list_uses_raw_counts() -> None:
    fingerprint = measure(["qapla qapla qapla batlh batlh batlh"] * 2, language="tlh")
    assert [(m.text, m.ratio) for m in fingerprint.go_to_words] == [
        ("batlh", None), ("qapla", None)]
    assert fingerprint.avoided_words == []


def test_mtld_on_a_known_sequence() -> None:
    # "a b a" drops the type-token ratio to 2/3 < 0.72: one factor every 3 tokens.
    assert mtld(["a", "b"] * 60) == 3.0
    assert mtld(["a", "b"] * 40) is None  # under 100 words


def test_line_breaks_are_counted_inside_samples_not_between_them_or_after_them() -> None:
    one_paragraph = ["We shipped the billing flow on Tuesday and it held up well all week "
                     "long, which is more than we hoped for. " * 3] * 4
    with_newlines = [sample + "\n\n" for sample in one_paragraph]
    assert measure(one_paragraph, language="en").punctuation["line_break"] == 0.0
    assert measure(with_newlines, language="en").punctuation["line_break"] == 0.0
    broken = measure(["First line.\nSecond line.\n- a list item\n"] * 2, language="en")
    assert broken.punctuation["line_break"] > 0 and broken.punctuation["list_item"] > 0
