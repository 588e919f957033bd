"""How each platform counts a post's length: characters, graphemes, UTF-16 or X's weights.

Every rule normalises to NFC first (a decomposed ``e`` + combining accent is one
character, as the platforms count it). The rules:

* ``characters``: Unicode code points (LinkedIn, Instagram, Facebook, Threads, YouTube,
  Mastodon). With ``url_length`` every http(s) URL counts that many, whatever its
  length (Mastodon: 23).
* ``graphemes``: user-perceived characters, ``regex``'s ``\\X`` (Bluesky): an emoji
  family, a flag, a Hindi conjunct or a letter with its combining marks is one.
* ``utf16``: UTF-16 code units (what JavaScript's ``length`` reports).
* ``weighted``: X's rules (twitter-text v3 configuration): code points in the light
  ranges (U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F, U+2032-U+2037) weigh 1, every
  other code point 2 (so most CJK weighs 2); an emoji sequence (ZWJ families, skin
  tones, flags, keycaps, tag flags) weighs 2 as one unit; every URL, with or without a
  scheme, counts ``url_length`` (23).

The X rules are owned here rather than taken from the ``twitter-text-parser`` package:
its emoji table is Unicode 12 (2019), so newer sequences are mis-weighed (U+1F9D1 ZWJ
families of Unicode 15 count 8 instead of 2), it imports the deprecated
``pkg_resources``, has had no release since 2020, and takes ~12 ms for 3,000
characters, more than the whole validation budget. The ``regex`` module's Unicode
emoji properties stay current with the package.
"""

from __future__ import annotations

import unicodedata
from typing import Literal, get_args

import regex

Counting = Literal["characters", "graphemes", "utf16", "weighted"]
COUNTINGS: tuple[str, ...] = get_args(Counting)

# An http(s) URL: the scheme, then anything up to white space or an angle bracket or
# quote; trailing sentence punctuation is not part of it (see _trim_url).
_SCHEME_URL = r"https?://[^\s<>\"']+"
# A URL without a scheme, as X links it: a dotted host ending in a common generic TLD,
# or in any two-letter country TLD when a path follows (so "file.py" stays text).
_GENERIC_TLDS = ("com|org|net|edu|gov|io|co|ai|app|dev|me|ly|info|biz|xyz|tech|blog|news"
                 "|shop|site|online|store|tv|fm|gg|so|to|us|uk|in|de|fr|jp")
_BARE_URL = (r"(?<![\w@.\-/])(?:www\.)?(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+"
             rf"(?:(?:{_GENERIC_TLDS})\b(?:/[^\s<>\"']*)?|[a-z]{{2}}/[^\s<>\"']*)")
SCHEME_URL = regex.compile(_SCHEME_URL, regex.IGNORECASE)
ANY_URL = regex.compile(rf"{_SCHEME_URL}|{_BARE_URL}", regex.IGNORECASE)
_TRAILING = ".,;:!?'\"*"

# One emoji as X counts it: a pictograph with its variation selector / skin tone,
# joined by ZWJ to more, with optional tag characters (England's flag); a flag
# (two regional indicators); or a keycap.
_PICTO = r"\p{Extended_Pictographic}(?:\uFE0F|\p{EMod})*"
EMOJI = regex.compile(rf"\p{{RI}}\p{{RI}}|[#*0-9]\uFE0F?\u20E3"
                      rf"|{_PICTO}(?:\u200D{_PICTO})*[\U000E0020-\U000E007E]*\U000E007F?")
# Code points X weighs 2: everything outside its light ranges.
_HEAVY = regex.compile(r"[^\u0000-\u10FF\u2000-\u200D\u2010-\u201F\u2032-\u2037]")
_GRAPHEME = regex.compile(r"\X")
X_URL_LENGTH = 23


def _trim_url(url: str) -> str:
    """The URL without trailing punctuation, and without a closing parenthesis it
    did not open (``(see https://a.com/x)``)."""
    url = url.rstrip(_TRAILING)
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1].rstrip(_TRAILING)
    return url


def find_urls(text: str, *, bare: bool = False) -> list[tuple[int, int]]:
    """Spans of the URLs in ``text``: http(s) only, or (``bare``) also X's
    scheme-less ``example.com/path`` links."""
    pattern = ANY_URL if bare else SCHEME_URL
    spans = []
    for match in pattern.finditer(text):
        url = _trim_url(match.group())
        if url:
            spans.append((match.start(), match.start() + len(url)))
    return spans


def _without_urls(text: str, url_length: int | None, *, bare: bool) -> tuple[str, int]:
    """``text`` with its URLs cut out, and what they count together."""
    if url_length is None:
        return text, 0
    spans = find_urls(text, bare=bare)
    if not spans:
        return text, 0
    kept, start = [], 0
    for begin, end in spans:
        kept.append(text[start:begin])
        start = end
    kept.append(text[start:])
    return "".join(kept), len(spans) * url_length


def _weighted(text: str) -> int:
    emoji_units = 0

    def one_unit(match: regex.Match[str]) -> str:
        nonlocal emoji_units
        found = match.group()
        if len(found) == 1 and not regex.match(r"\p{Emoji_Presentation}", found):
            return found  # a text-style pictograph (©, ®, ™): weighed as a code point
        emoji_units += 1
        return ""

    rest = EMOJI.sub(one_unit, text)
    return len(rest) + len(_HEAVY.findall(rest)) + 2 * emoji_units


def count(text: str, counting: str, *, url_length: int | None = None) -> int:
    """``text``'s length under ``counting`` (see the module docstring); with
    ``url_length`` each URL counts that many instead of its own length."""
    if counting not in COUNTINGS:
        raise ValueError(f"unknown counting {counting!r}; known: {', '.join(COUNTINGS)}")
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n")
    rest, url_units = _without_urls(text, url_length, bare=counting == "weighted")
    if counting == "weighted":
        return _weighted(rest) + url_units
    if counting == "graphemes":
        return len(_GRAPHEME.findall(rest)) + url_units
    if counting == "utf16":
        return len(rest.encode("utf-16-le")) // 2 + url_units
    return len(rest) + url_units
