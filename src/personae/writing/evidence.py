"""Evidence quotes checked against the samples they claim to come from.

A model's claim about a person's writing is kept only when its quotes are really
theirs: each quote must appear verbatim in one sample. "Verbatim" forgives what a
model cannot see or reproduce faithfully: runs of whitespace and line breaks, curly
versus straight quotes and apostrophes, the dash family, the ellipsis character,
letter case, and quote marks or an ellipsis wrapped around the whole quote. Nothing
else is forgiven: a changed, dropped or added word fails.

A quote must also be long enough to mean something: at least :data:`MIN_WORDS`
words, or :data:`MIN_CJK_CHARS` characters for scripts written without spaces
(Chinese, Japanese, Thai, ...), where a word count says little.

The samples are normalised once into one haystack per :class:`EvidenceIndex`, so
checking every quote of a synthesis over a megabyte of samples costs a few substring
searches.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import regex

MIN_WORDS = 3
MIN_CJK_CHARS = 12

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-",
    "\u2026": "...",
})
_SPACE = regex.compile(r"\s+")
_WORD = regex.compile(r"\w+")
_NO_SPACE_SCRIPT = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]")
# Wrapping a model may put around a quote: quote marks, an ellipsis, spaces.
_WRAPPING = "\"' ."
# Between samples in the haystack: normalised text never contains a line break, so a
# quote cannot match across two samples.
_SEPARATOR = "\n"


def normalise(text: str) -> str:
    """``text`` as quotes are compared: NFKC, straight quotes, one dash, one space,
    casefolded."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return _SPACE.sub(" ", text).strip().casefold()


@dataclass(frozen=True, slots=True)
class QuoteCheck:
    quote: str
    holds: bool
    reason: str | None = None  # why it does not hold: "too short", "not in the samples"


class EvidenceIndex:
    """The normalised samples, searched for quotes."""

    def __init__(self, samples: Sequence[str]) -> None:
        self._haystack = _SEPARATOR.join(normalise(sample) for sample in samples)

    def check(self, quote: str) -> QuoteCheck:
        needle = _unwrapped(normalise(quote))
        if not long_enough(needle):
            return QuoteCheck(quote, False, "too short")
        if needle not in self._haystack:
            return QuoteCheck(quote, False, "not in the samples")
        return QuoteCheck(quote, True)

    def holding(self, quotes: Iterable[str]) -> list[str]:
        """The quotes that hold, as given, in order, each once."""
        kept: list[str] = []
        seen: set[str] = set()
        for quote in quotes:
            key = _unwrapped(normalise(quote))
            if key not in seen and self.check(quote).holds:
                seen.add(key)
                kept.append(quote.strip())
        return kept


def long_enough(text: str) -> bool:
    """At least :data:`MIN_WORDS` words, or :data:`MIN_CJK_CHARS` characters of a
    script written without spaces."""
    if len(_WORD.findall(text)) >= MIN_WORDS:
        return True
    return (_NO_SPACE_SCRIPT.search(text) is not None
            and len(_SPACE.sub("", text)) >= MIN_CJK_CHARS)


def _unwrapped(needle: str) -> str:
    return needle.strip(_WRAPPING)
