"""Vocabulary measures of a fingerprint: go-to words and phrases, avoided words, MTLD,
readability. Each is measured against the language's reference list (``lexicon``)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from wordfreq import word_frequency

from personae.personas.writing_block import Marker
from personae.writing import lexicon

MIN_COUNT = 3  # a marker must occur at least this often
TOP_MARKERS = 15
MIN_RATIO = 2.0  # at least twice as often as the reference predicts
AVOIDED_MIN_WORDS = 1000  # below this, "never used" means little
AVOIDED_MIN_EXPECTED = 5.0  # the reference predicts at least this many uses
AVOIDED_MAX = 30
MTLD_THRESHOLD = 0.72
MTLD_MIN_WORDS = 100
_FLOOR = 1e-8  # reference frequency of a word the list does not know


def _marker(text: str, count: int, total: int, reference: float | None) -> Marker:
    rate = count / total
    ratio = None if reference is None else round(rate / max(reference, _FLOOR), 2)
    return Marker(text=text, count=count, per_1000=round(rate * 1000, 2), ratio=ratio)


def go_to_words(tokens: Sequence[str], language: str) -> list[Marker]:
    """Words used far more than the reference predicts, by count x log-ratio.

    The language's ~150 most frequent words and numbers are left out: they say little
    alone. Without a reference list: the most frequent words, ratio None."""
    counts = Counter(t for t in tokens if not t.isdigit())
    return _distinctive(counts, len(tokens), language,
                        skip=lexicon.stop_words(language), reference=lexicon.reference_frequency)


def go_to_phrases(sentences_tokens: Sequence[Sequence[str]], total: int,
                  language: str) -> list[Marker]:
    """2-3 word phrases (within a sentence) that are distinctive for the person.

    A phrase of stop words only ("of the") is left out; its reference frequency is
    wordfreq's estimate for the phrase."""
    stops = lexicon.stop_words(language)
    counts: Counter[str] = Counter()
    for tokens in sentences_tokens:
        for size in (2, 3):
            for i in range(len(tokens) - size + 1):
                gram = tokens[i : i + size]
                if not all(t in stops for t in gram):
                    counts[" ".join(gram)] += 1
    found = _distinctive(counts, total, language, skip=frozenset(), reference=_phrase_frequency,
                         top=TOP_MARKERS * 2)
    longer = [m for m in found if m.text.count(" ") == 2]
    # A pair inside a kept triple with as many uses is the same habit: keep the triple.
    kept = [m for m in found if not any(m.text in t.text and m.count <= t.count for t in longer
                                        if t is not m)]
    return kept[:TOP_MARKERS]


@lru_cache(maxsize=65536)
def _phrase_frequency(phrase: str, language: str) -> float:
    return float(word_frequency(phrase, language)) if lexicon.has_reference(language) else 0.0


def _distinctive(counts: Counter[str], total: int, language: str, *, skip: frozenset[str],
                 reference: Callable[[str, str], float], top: int = TOP_MARKERS) -> list[Marker]:
    candidates = [(item, n) for item, n in counts.items() if n >= MIN_COUNT and item not in skip]
    if not total or not candidates:
        return []
    if not lexicon.has_reference(language):
        ordered = sorted(candidates, key=lambda c: (-c[1], c[0]))[:top]
        return [_marker(item, n, total, None) for item, n in ordered]
    scored = []
    for item, n in candidates:
        freq = reference(item, language)
        ratio = (n / total) / max(freq, _FLOOR)
        if ratio >= MIN_RATIO:
            scored.append((n * math.log(ratio), item, n, freq))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [_marker(item, n, total, freq) for _, item, n, freq in scored[:top]]


def avoided_words(tokens: Sequence[str], language: str) -> list[str]:
    """Common reference words never used though this much text predicts >= 5 uses."""
    if len(tokens) < AVOIDED_MIN_WORDS:
        return []
    used = set(tokens)
    missing = []
    for word in lexicon.common_words(language):
        expected = lexicon.reference_frequency(word, language) * len(tokens)
        usable = word.isalpha() and len(word) > 1
        if usable and expected >= AVOIDED_MIN_EXPECTED and word not in used:
            missing.append((expected, word))
    missing.sort(key=lambda m: (-m[0], m[1]))
    return [word for _, word in missing[:AVOIDED_MAX]]


def _mtld_pass(tokens: Sequence[str]) -> float:
    factors, types, count = 0.0, set[str](), 0
    for token in tokens:
        types.add(token)
        count += 1
        if len(types) / count <= MTLD_THRESHOLD:
            factors += 1
            types, count = set(), 0
    if count:  # the partial factor of the last run
        ttr = len(types) / count
        factors += (1 - ttr) / (1 - MTLD_THRESHOLD)
    return len(tokens) / factors if factors else float(len(tokens))


def mtld(tokens: Sequence[str]) -> float | None:
    """MTLD (McCarthy & Jarvis 2010), the mean of the forward and backward passes;
    None under ``MTLD_MIN_WORDS`` words, where it is not stable."""
    if len(tokens) < MTLD_MIN_WORDS:
        return None
    return round((_mtld_pass(tokens) + _mtld_pass(list(reversed(tokens)))) / 2, 2)


# textstat locales whose formulas are calibrated (others get no readability).
_READABILITY_LOCALES = {"en": "en_US", "de": "de_DE", "es": "es_ES", "fr": "fr_FR",
                        "it": "it_IT", "nl": "nl_NL", "ru": "ru_RU"}


@lru_cache(maxsize=8)
def _textstat(locale: str) -> Any:
    from textstat.textstat import textstatistics  # slow import: the English dictionary

    scorer = textstatistics()
    scorer.set_lang(locale)
    return scorer


def readability(text: str, language: str) -> dict[str, float]:
    """textstat's Flesch reading ease (the language's own calibration) and, for English,
    the Flesch-Kincaid grade; empty for languages textstat has no formula for."""
    locale = _READABILITY_LOCALES.get(language)
    if locale is None or not text.strip():
        return {}
    scorer = _textstat(locale)
    scores = {"flesch_reading_ease": float(scorer.flesch_reading_ease(text))}
    if language == "en":
        scores["flesch_kincaid_grade"] = float(scorer.flesch_kincaid_grade(text))
    return scores
