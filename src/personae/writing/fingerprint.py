"""Measure a person's samples (``measure``) or one draft (``measure_draft``).

Everything here is deterministic: the same samples give the same fingerprint. Counts
are per 1,000 words so samples and drafts of any length compare. Sentence types:
a question ends in "?", an exclamation in "!", a *fragment* is any other sentence of
fewer than four words ("Big news." "Onwards."), and the rest are declarative.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import emoji
import regex

from personae.personas.writing_block import Confidence, Fingerprint, SentenceStats
from personae.writing import markers
from personae.writing.stylometry import profile_of
from personae.writing.text import detect_language, sentences, words

LOW_WORDS, HIGH_WORDS = 2500, 5000
FRAGMENT_WORDS = 4
PUNCTUATION_KEYS = ("em_dash", "ellipsis", "exclamation", "question", "semicolon", "colon",
                    "parenthesis", "quote", "emoji", "hashtag", "mention", "url", "line_break",
                    "list_item")
HASHTAG = regex.compile(r"(?<![\p{L}\p{N}_&])#[\p{L}\p{N}_]*\p{L}[\p{L}\p{N}_]*")
MENTION = regex.compile(r"(?<![\p{L}\p{N}_.])@[\p{L}\p{N}_]{1,30}")
URL = regex.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", regex.I)
_MARKS = {
    "em_dash": regex.compile(r"—|(?<!-)--(?!-)"),
    "ellipsis": regex.compile(r"…|\.{3,}"),
    "exclamation": regex.compile(r"[!！]+"),
    "question": regex.compile(r"[?？]+"),
    "semicolon": regex.compile(r";"),
    "colon": regex.compile(r"(?<!\d):(?!//|\d)"),
    "parenthesis": regex.compile(r"[(（]"),
    "quote": regex.compile(r"[\"“”«»„「」]"),
    "line_break": regex.compile(r"\n"),
    "list_item": regex.compile(r"^[ \t]*(?:[-*•]|\d{1,3}[.)])[ \t]+", regex.M),
}
_CONTRACTION = regex.compile(r"\p{L}['’]\p{L}")
# First-person singular and plural pronouns and determiners, casefolded.
FIRST_PERSON = {
    "en": "i me my mine myself we us our ours ourselves i'm i've i'd i'll we're we've we'd we'll",
    "es": "yo me mí mi mis mío mía conmigo nosotros nosotras nos nuestro nuestra nuestros nuestras",
    "fr": "je j' me m' moi mon ma mes nous notre nos",
    "de": "ich mich mir mein meine meiner meinen meinem wir uns unser unsere unseren unserem",
    "pt": "eu me mim meu minha meus minhas comigo nós nos nosso nossa nossos nossas",
    "it": "io me mi mio mia miei mie noi ci nostro nostra nostri nostre",
    "hi": "मैं मुझे मेरा मेरी मेरे हम हमें हमारा हमारी हमारे",
}
_FIRST_PERSON = {lang: frozenset(text.split()) for lang, text in FIRST_PERSON.items()}


@dataclass(frozen=True, slots=True)
class DraftMeasures:
    """One draft, cheap: validation calls it on every request."""

    language: str
    language_probability: float
    tokens: list[str]
    word_count: int
    sentence_count: int
    sentence_mean_words: float
    sentence_median_words: float
    punctuation: dict[str, float]
    hashtags: list[str]
    mentions: list[str]
    urls: list[str]
    emoji_count: int


# Every emoji has a code point in one of these ranges: text without any skips the
# (slower) exact count of the emoji library.
_MAYBE_EMOJI = regex.compile(r"[\u00a9\u00ae\u203c-\u3299\U0001F000-\U0001FAFF]")


def emoji_count(text: str) -> int:
    """Emoji in ``text`` (a skin tone or ZWJ sequence counts once), by the emoji library."""
    return emoji.emoji_count(text) if _MAYBE_EMOJI.search(text) else 0


def _prose(text: str) -> str:
    """The text without URLs and mentions, which are not words of the person's."""
    return MENTION.sub(" ", URL.sub(" ", text))


def _per_1000(count: int, total_words: int) -> float:
    return round(count * 1000 / total_words, 2) if total_words else 0.0


def punctuation(text: str, total_words: int, *, emoji_total: int | None = None) -> dict[str, float]:
    """The habits of ``PUNCTUATION_KEYS``, each per 1,000 words."""
    counts = _mark_counts(text, emoji_total)
    return {key: _per_1000(counts[key], total_words) for key in PUNCTUATION_KEYS}


def samples_punctuation(samples: Sequence[str], total_words: int) -> dict[str, float]:
    """:func:`punctuation` of several samples, each counted alone and without the
    whitespace around it: the boundary between two samples, or a file's last newline,
    is no line break of the person's."""
    counts = Counter[str]()
    for sample in samples:
        counts.update(_mark_counts(sample.strip()))
    return {key: _per_1000(counts[key], total_words) for key in PUNCTUATION_KEYS}


def _mark_counts(text: str, emoji_total: int | None = None) -> dict[str, int]:
    counts = {key: len(pattern.findall(text)) for key, pattern in _MARKS.items()}
    counts["ellipsis"] = len(_MARKS["ellipsis"].findall(URL.sub(" ", text)))
    counts["emoji"] = emoji_count(text) if emoji_total is None else emoji_total
    counts["hashtag"] = len(HASHTAG.findall(text))
    counts["mention"] = len(MENTION.findall(text))
    counts["url"] = len(URL.findall(text))
    return counts


def measure_draft(text: str, *, language: str) -> DraftMeasures:
    """The cheap measures of one draft (no stylometry, no reference lists)."""
    detected, probability = detect_language(text)
    per_sentence = [words(s, language) for s in sentences(_prose(text))]
    tokens = [token for sentence in per_sentence for token in sentence]
    lengths = [len(s) for s in per_sentence if s] or [0]
    emoji_total = emoji_count(text)
    return DraftMeasures(
        language=detected, language_probability=probability, tokens=tokens,
        word_count=len(tokens), sentence_count=len(lengths) if lengths != [0] else 0,
        sentence_mean_words=round(statistics.fmean(lengths), 2),
        sentence_median_words=float(statistics.median(lengths)),
        punctuation=punctuation(text, len(tokens), emoji_total=emoji_total),
        hashtags=HASHTAG.findall(text), mentions=MENTION.findall(text), urls=URL.findall(text),
        emoji_count=emoji_total)


def _sentence_stats(all_sentences: Sequence[str], lengths: Sequence[int]) -> SentenceStats:
    if not lengths:
        return SentenceStats(count=0, mean_words=0, median_words=0, stdev_words=0,
                             p10_words=0, p90_words=0)
    kinds = [_sentence_type(s, n) for s, n in zip(all_sentences, lengths, strict=True)]
    deciles = (statistics.quantiles(lengths, n=10, method="inclusive") if len(lengths) > 1
               else [float(lengths[0])] * 9)
    share = {kind: round(kinds.count(kind) / len(kinds), 4) for kind in set(kinds)}
    return SentenceStats(
        count=len(lengths), mean_words=round(statistics.fmean(lengths), 2),
        median_words=float(statistics.median(lengths)),
        stdev_words=round(statistics.pstdev(lengths), 2),
        p10_words=round(deciles[0], 2), p90_words=round(deciles[-1], 2),
        declarative=share.get("declarative", 0.0), question=share.get("question", 0.0),
        exclamation=share.get("exclamation", 0.0), fragment=share.get("fragment", 0.0))


def _sentence_type(sentence: str, length: int) -> str:
    end = sentence.rstrip("\"'”’)] ")
    if end.endswith(("?", "？")):
        return "question"
    if end.endswith(("!", "！")):
        return "exclamation"
    return "fragment" if length < FRAGMENT_WORDS else "declarative"


def confidence(total_words: int) -> Confidence:
    """How far the measures can be trusted, from how many words there are."""
    level = "low" if total_words < LOW_WORDS else "medium" if total_words < HIGH_WORDS else "high"
    note = (f"{total_words:,} words of samples. Style measures become stable at about "
            f"{LOW_WORDS:,}-{HIGH_WORDS:,} words (authorship attribution research); ")
    if level == "high":
        note += "there is enough text for stable measures."
    else:
        wanted = LOW_WORDS if level == "low" else HIGH_WORDS
        note += f"about {wanted - total_words:,} more words would make them more reliable."
    return Confidence(level=level, words=total_words, note=note)


def first_person_rate(tokens: Sequence[str], language: str) -> float:
    """First-person pronouns per 1,000 words; 0 for a language without a list."""
    pronouns = _FIRST_PERSON.get(language)
    if pronouns is None:
        return 0.0
    return _per_1000(sum(1 for t in tokens if t in pronouns), len(tokens))


def measure(samples: Sequence[str], *, language: str | None = None) -> Fingerprint:
    """The fingerprint of ``samples``; ``language`` None detects it over all of them."""
    joined = "\n\n".join(samples)
    lang = language or detect_language(joined)[0]
    prose = [_prose(sample) for sample in samples]
    per_sample = [words(text, lang) for text in prose]
    tokens = [t for sample_tokens in per_sample for t in sample_tokens]
    all_sentences = [s for text in prose for s in sentences(text)]
    sentence_tokens = [words(s, lang) for s in all_sentences]
    kept = [(s, t) for s, t in zip(all_sentences, sentence_tokens, strict=True) if t]
    return Fingerprint(
        language=lang, sample_count=len(samples), word_count=len(tokens),
        confidence=confidence(len(tokens)),
        sentences=_sentence_stats([s for s, _ in kept], [len(t) for _, t in kept]),
        mtld=markers.mtld(tokens), readability=markers.readability("\n".join(prose), lang),
        go_to_words=markers.go_to_words(tokens, lang),
        go_to_phrases=markers.go_to_phrases([t for _, t in kept], len(tokens), lang),
        avoided_words=markers.avoided_words(tokens, lang),
        punctuation=samples_punctuation(samples, len(tokens)),
        contractions_per_1000=_per_1000(sum(1 for t in tokens if _CONTRACTION.search(t)),
                                        len(tokens)),
        first_person_per_1000=first_person_rate(tokens, lang),
        words_per_sample=float(statistics.median(len(t) for t in per_sample)) if samples else 0.0,
        hashtags_per_sample=_mean_per_sample(samples, lambda s: len(HASHTAG.findall(s))),
        emoji_per_sample=_mean_per_sample(samples, emoji_count),
        profile=profile_of(prose, language=lang))


def _mean_per_sample(samples: Sequence[str], count: Callable[[str], int]) -> float:
    if not samples:
        return 0.0
    return round(statistics.fmean(int(count(s)) for s in samples), 2)


