"""Each platform's counting rule: X's weights, graphemes, characters with fixed-length URLs."""

from __future__ import annotations

import pytest

from personae.writing.counting import count, find_urls

FAMILY = "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466"  # 7 code points
THUMB_SKIN = "\U0001F44D\U0001F3FD"
FLAG_JP = "\U0001F1EF\U0001F1F5"
ENGLAND = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
FAMILY_15_1 = "\U0001F9D1\u200D\U0001F9D1\u200D\U0001F9D2"  # Unicode 15.1
KEYCAP = "1\uFE0F\u20E3"
LONG_URL = "https://example.com/a/very/long/path/that/goes/on/and/on?x=1"  # 61 characters


@pytest.mark.parametrize(("text", "weighted"), [
    ("hello world", 11),
    ("\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8", 16),  # CJK: 8 x 2
    ("\uc548\ub155\ud558\uc138\uc694", 10),  # Hangul: 5 x 2
    ("\U0001F637", 2),
    (FAMILY, 2), (THUMB_SKIN, 2), (FLAG_JP, 2), (ENGLAND, 2), (FAMILY_15_1, 2), (KEYCAP, 2),
    ("\u2764\uFE0F", 2),
    ("\u00a9 2026", 6),  # a text-style pictograph weighs as a code point
    ("\u201cquote\u201d \u2014 dash\u2026", 16),  # curly quotes, em dash light; ellipsis 2
    ("\u0928\u092e\u0938\u094d\u0924\u0947", 6),  # Devanagari is in the light range
    ("e\u0301", 1),  # NFC first: one character
    (f"see {LONG_URL}", 4 + 23),  # a URL over 23 still counts 23
    ("see https://a.co", 4 + 23),  # a shorter one too
    ("see example.com/path", 4 + 23),  # no scheme: X links it anyway
    ("edit file.py now", 16),  # a file name is not a link
    ("(see https://a.com/x).", 5 + 23 + 2),  # trailing punctuation is not the URL's
])
def test_x_weighted_length(text: str, weighted: int) -> None:
    assert count(text, "weighted", url_length=23) == weighted


@pytest.mark.parametrize(("text", "graphemes"), [
    ("hello", 5),
    (FAMILY, 1), (THUMB_SKIN, 1), (FLAG_JP, 1), (ENGLAND, 1), (KEYCAP, 1),
    ("e\u0301a\u0308", 2),  # combining marks stay with their letter
    ("\u0928\u092e\u0938\u094d\u0924\u0947", 3),  # Hindi conjuncts: na, ma, ste
    ("\u0915\u094d\u0937", 1),  # ksha: one conjunct
    (LONG_URL, len(LONG_URL)),  # Bluesky counts the link as written
])
def test_graphemes(text: str, graphemes: int) -> None:
    assert count(text, "graphemes") == graphemes


def test_characters_are_code_points_after_nfc() -> None:
    assert count("e\u0301", "characters") == 1
    assert count(FAMILY, "characters") == 7
    assert count("\u65e5\u672c", "characters") == 2
    assert count("a\r\nb", "characters") == 3  # a Windows line ending is one break


def test_mastodon_counts_every_http_url_as_23() -> None:
    text = f"read {LONG_URL} and http://x.io"
    assert count(text, "characters", url_length=23) == len("read ") + 23 + len(" and ") + 23
    # Only http(s) links: a bare domain counts as written.
    assert count("see example.com/path", "characters", url_length=23) == 20
    assert count(LONG_URL, "characters") == len(LONG_URL)  # no url_length: as written


def test_utf16_units() -> None:
    assert count("\U0001F637a", "utf16") == 3


def test_unknown_counting_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown counting 'bytes'"):
        count("x", "bytes")


def test_url_spans_trim_unopened_parentheses() -> None:
    text = "(see https://en.wikipedia.org/wiki/Foo_(bar)) and https://a.com."
    assert [text[a:b] for a, b in find_urls(text)] == [
        "https://en.wikipedia.org/wiki/Foo_(bar)", "https://a.com"]


def test_empty_text_counts_zero() -> None:
    assert all(count("", rule, url_length=23) == 0
               for rule in ("characters", "graphemes", "utf16", "weighted"))
