"""The vectors style distance compares: word and character n-gram frequencies, z-scored.

Two kinds of feature, in two blocks: ``w:`` plus a word (share of the text's words,
for the language's most frequent words from wordfreq's reference list) and ``c:``
plus a character 2-, 3- or 4-gram (share of the text's n-grams). A profile stores
only the features the samples use (a missing key means 0), so it stays small.

The population model (:func:`population_z`) z-scores a word's frequency ``f``
against the language at large, with no other authors: ``(f - p) / p ** 0.75`` for
the reference frequency ``p``. Word counts vary across texts more than Poisson's
``sqrt(p/n)`` (Taylor's law for word frequencies: the variance grows about as the
mean to the power 1.5; Gerlach & Altmann 2014), so the spread is taken as
``p ** 0.75``; the ``1/sqrt(n)`` of a text's length is the same for every word and
cancels in a cosine. The exponent was also the best of 0.5 / 0.75 / 1.0 on
``bench/style_attribution.py``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import regex
from wordfreq import get_frequency_dict

from personae.writing import lexicon

NGRAM_SIZES = (2, 3, 4)
TAYLOR_EXPONENT = 0.75
Z_CLIP = 2.0  # one feature far off (a name, a topic word) should not outvote the rest
SIGNIFICANT_DIGITS = 3  # stored frequencies: enough for distances, small JSON
_SPACES = regex.compile(r"\s+")
Vector = dict[str, float]


def char_ngrams(text: str) -> Counter[str]:
    """Character 2-4 grams of the casefolded text, runs of whitespace as one space."""
    flat = _SPACES.sub(" ", text.casefold())
    grams: Counter[str] = Counter()
    for size in NGRAM_SIZES:
        grams.update(flat[i : i + size] for i in range(len(flat) - size + 1))
    return grams


@lru_cache(maxsize=64)
def reference_words(language: str, count: int) -> tuple[tuple[str, float], ...]:
    """The language's ``count`` most frequent words with their reference frequency (read
    from the list itself: looking a word up would tokenize it, which for Japanese or
    Chinese needs an optional segmenter), to 3 significant digits as wordfreq gives them."""
    if not lexicon.has_reference(language):
        return ()
    frequencies = get_frequency_dict(language)
    return tuple((word, float(f"{frequencies[word]:.3g}"))
                 for word in lexicon.common_words(language, count))


def word_shares(counts: Counter[str], keys: Iterable[str]) -> Vector:
    """Share of the counted words that is each word of ``keys`` (``w:`` keys, zeros
    left out)."""
    total = max(sum(counts.values()), 1)
    return {f"w:{word}": counts[word] / total for word in keys if counts[word]}


def gram_shares(grams: Counter[str], keys: Iterable[str]) -> Vector:
    """Share of all n-grams that is each gram of ``keys`` (``c:`` keys, zeros left out)."""
    total = max(sum(grams.values()), 1)
    return {f"c:{gram}": grams[gram] / total for gram in keys if grams[gram]}


def rounded(vector: Mapping[str, float]) -> Vector:
    return {key: float(f"{value:.{SIGNIFICANT_DIGITS}g}") for key, value in vector.items()}


def clip(z: float) -> float:
    return max(-Z_CLIP, min(Z_CLIP, z))


def population_z(vector: Mapping[str, float], language: str, count: int) -> list[float]:
    """The words of ``vector`` against the language at large (see the module docstring):
    the language's ``count`` most frequent words."""
    scale = _population_scale(language, count)
    z = list(scale.absent)  # a draft holds few of the words: start from "not used"
    for key, value in vector.items():
        at = scale.index.get(key)
        if at is not None:
            z[at] = clip((value - scale.means[at]) / scale.spreads[at])
    return z


@dataclass(frozen=True, slots=True)
class _Scale:
    index: dict[str, int]  # feature key -> position
    means: tuple[float, ...]
    spreads: tuple[float, ...]
    absent: tuple[float, ...]  # the z of a word the text does not use


@lru_cache(maxsize=16)
def _population_scale(language: str, count: int) -> _Scale:
    """Each reference word's position, mean and Taylor's-law spread, made once per
    language: validation needs them for every draft."""
    kept = [(word, p) for word, p in reference_words(language, count) if p > 0]
    spreads = tuple(p**TAYLOR_EXPONENT for _, p in kept)
    return _Scale({f"w:{word}": at for at, (word, _) in enumerate(kept)},
                  tuple(p for _, p in kept), spreads,
                  tuple(clip(-p / spread) for (_, p), spread in zip(kept, spreads, strict=True)))


def own_z(vector: Mapping[str, float], means: Mapping[str, float]) -> list[float]:
    """Without a reference list: against the person's own frequencies, same spread law."""
    return [clip((vector.get(key, 0.0) - mean) / mean**TAYLOR_EXPONENT)
            for key, mean in means.items() if mean > 0]


def candidate_z(vectors: Sequence[Mapping[str, float]],
                keys: Sequence[str]) -> tuple[list[str], list[float], list[float]]:
    """Burrows' standardisation: each key's mean and spread over the candidates (keys
    with no spread are dropped)."""
    kept, means, spreads = [], [], []
    for key in keys:
        values = [v.get(key, 0.0) for v in vectors]
        mean = math.fsum(values) / len(values)
        spread = math.sqrt(math.fsum((x - mean) ** 2 for x in values) / len(values))
        if spread > 0:
            kept.append(key)
            means.append(mean)
            spreads.append(spread)
    return kept, means, spreads


def standardised(vector: Mapping[str, float], keys: Sequence[str], means: Sequence[float],
                 spreads: Sequence[float]) -> list[float]:
    return [clip((vector.get(key, 0.0) - mean) / spread)
            for key, mean, spread in zip(keys, means, spreads, strict=True)]


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0:
        return 1.0
    return 1.0 - sum(x * y for x, y in zip(a, b, strict=True)) / norm
