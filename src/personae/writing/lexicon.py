"""Reference data of a language from wordfreq: how often its words are used at large.

Go-to words are words a person uses far more often than the reference predicts;
avoided words are common words they never use; the function words of the style
profile are the language's most frequent words. Languages wordfreq has no list for
get none (``has_reference`` is False): callers then fall back to raw sample counts.
"""

from __future__ import annotations

from functools import lru_cache

from wordfreq import available_languages, top_n_list, word_frequency

# How many of the language's most frequent words count as "common": candidates for
# function words and for words the person avoids.
COMMON_WORDS = 300


@lru_cache(maxsize=64)
def has_reference(language: str) -> bool:
    """Whether wordfreq carries a frequency list for ``language``."""
    return language in available_languages()


@lru_cache(maxsize=64)
def common_words(language: str, count: int = COMMON_WORDS) -> tuple[str, ...]:
    """The ``count`` most frequent words of the language, most frequent first (or none)."""
    if not has_reference(language):
        return ()
    return tuple(word for word in top_n_list(language, count) if any(c.isalnum() for c in word))


@lru_cache(maxsize=64)
def stop_words(language: str) -> frozenset[str]:
    """The language's ~150 most frequent words: never a go-to word on their own."""
    return frozenset(common_words(language, 150))


@lru_cache(maxsize=65536)
def reference_frequency(word: str, language: str) -> float:
    """Share of all words in the language that are ``word`` (0 when unknown)."""
    if not has_reference(language):
        return 0.0
    return float(word_frequency(word, language))
