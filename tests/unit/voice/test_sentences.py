"""The reply cut into speakable pieces as it streams."""

from __future__ import annotations

import pytest

from personae.voice.sentences import SentenceSplitter, speakable


def pieces(text: str, step: int = 3, **options: int) -> list[str]:
    splitter, out = SentenceSplitter(**options), []
    for start in range(0, len(text), step):
        out += splitter.feed(text[start:start + step])
    return out + splitter.flush()


def test_the_first_piece_ends_at_a_clause_once_long_enough() -> None:
    text = "Well, the stars are aligned tonight, my friend, and Mars is bright. Rest."
    assert pieces(text, first_clause_chars=24, first_words=0) == [
        "Well, the stars are aligned tonight,", "my friend, and Mars is bright.", "Rest."]


def test_a_short_opening_clause_waits_for_more() -> None:
    assert pieces("Yes, indeed. Go.")[0] == "Yes, indeed."


def test_an_unpunctuated_opening_is_spoken_after_its_first_words() -> None:
    text = "The museum opens at nine on Sunday mornings and closes at five. Enjoy."
    assert pieces(text, first_words=5) == ["The museum opens at nine", "on Sunday mornings "
                                           "and closes at five.", "Enjoy."]
    assert pieces(text)[0] == "The museum opens at nine on Sunday mornings and closes at five."


def test_the_first_words_wait_for_a_word_to_be_complete() -> None:
    splitter = SentenceSplitter(first_words=2)
    assert splitter.feed("Good even") == []
    assert splitter.feed("ing to") == ["Good evening"]


def test_pieces_come_as_soon_as_they_are_complete() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there") == []
    assert splitter.feed(". How") == ["Hello there."]
    assert splitter.feed(" are you?") == []
    assert splitter.feed(" Fine") == ["How are you?"]
    assert splitter.flush() == ["Fine"]


@pytest.mark.parametrize(("text", "expected"), [
    ("It costs 3.5 rupees. Cheap!", ["It costs 3.5 rupees.", "Cheap!"]),
    ("See example.com/a.b for more. Bye.", ["See example.com/a.b for more.", "Bye."]),
    ("Dr. Rao met Mr. Khan today. Good.", ["Dr. Rao met Mr. Khan today.", "Good."]),
    ("Fruits, e.g. mangoes, are sweet. Yes.", ["Fruits, e.g. mangoes, are sweet.", "Yes."]),
    ("Wait... what? Really!", ["Wait...", "what?", "Really!"]),
    ("He said \"go.\" Then left.", ["He said \"go.\"", "Then left."]),
    ("नमस्ते। आप कैसे हैं॥ ठीक", ["नमस्ते।", "आप कैसे हैं॥", "ठीक"]),
    ("你好。今天好吗？好！", ["你好。", "今天好吗？", "好！"]),
    ("In 2024. Then more.", ["In 2024.", "Then more."]),
])
def test_sentence_ends(text: str, expected: list[str]) -> None:
    assert pieces(text, first_clause_chars=1000, first_words=0) == expected


def test_newlines_end_pieces_and_markdown_is_not_spoken() -> None:
    text = "## Your **stars**\n1. Mars is `bright`\n- Venus is [near](http://x.y/z)\n"
    assert pieces(text) == ["Your stars", "Mars is bright", "Venus is near"]


def test_a_long_run_without_punctuation_is_cut_at_a_space() -> None:
    text = " ".join(["word"] * 100)
    out = pieces(text, max_piece_chars=60)
    assert all(len(p) <= 60 for p in out)
    assert " ".join(out) == text


def test_punctuation_alone_is_not_spoken() -> None:
    assert pieces("Hi. ... ** \n") == ["Hi."]


def test_speakable_strips_emphasis_and_code() -> None:
    assert speakable("*very* __good__ ~~bad~~ ```py\nx = 1\n```") == "very good bad x = 1"
