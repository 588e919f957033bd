"""The style part of validation: how far a draft sounds from the person's samples.

Parts are shown separately, each in plain words: the style distance (Cosine Delta,
judged on the person's own spread), sentence length, punctuation habits, the
person's go-to words used and the words they never use that the draft uses.

The score (0-100, higher sounds more like them) is made so:

* 80% from the distance z (how many of the person's own spreads the draft sits
  beyond their typical distance): z <= 0 gives 100, each unit of z takes 20 off
  (z >= 5 gives 0).
* 20% from the deviations: 100, less 15 for each notable sentence-length or
  punctuation deviation and 10 for each avoided word used (floored at 0).

No score is given when the style cannot be judged: a draft too short to measure (the
distance's verdict is "unknown"), or one in another language than the samples (see
:func:`not_comparable`); the explanation says which.
"""

from __future__ import annotations

import math

from personae.personas.writing_block import Fingerprint
from personae.writing.fingerprint import DraftMeasures
from personae.writing.reports import Deviation, StyleDistance, StyleReport
from personae.writing.stylometry import style_distance

# Punctuation habits, named for people: "em dashes", "exclamation marks", ...
HABITS = {"em_dash": "em dashes", "ellipsis": "ellipses", "exclamation": "exclamation marks",
          "question": "question marks", "semicolon": "semicolons", "colon": "colons",
          "parenthesis": "parentheses", "quote": "quotation marks", "emoji": "emoji",
          "hashtag": "hashtags", "mention": "mentions", "url": "links",
          "line_break": "line breaks", "list_item": "list items"}
EXPECTED_FOR_NONE = 1.5  # a habit this frequent should show at least once in the draft
MANY_TIMES = 3.0  # this many times the person's rate (and 2+ uses) is notable


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def _punctuation(name: str, draft_rate: float, sample_rate: float, words: int) -> Deviation:
    """One habit: notable when the draft's count is unlikely at the person's rate."""
    habit = HABITS.get(name, name.replace("_", " "))
    expected = sample_rate * words / 1000
    observed = draft_rate * words / 1000
    notable, explanation = False, (f"You use {habit} about {_rate(sample_rate)} times per "
                                   f"1,000 words; this draft, {_rate(draft_rate)}.")
    if expected >= EXPECTED_FOR_NONE and observed < 0.5:
        notable = True
        explanation = (f"You use {habit} about {_rate(sample_rate)} times per 1,000 words; "
                       "this draft uses none.")
    elif observed >= 2 and observed > MANY_TIMES * expected + 1:
        notable = True
        explanation = (f"This draft uses {habit} {_rate(draft_rate)} times per 1,000 words; "
                       + (f"you use about {_rate(sample_rate)}." if sample_rate
                          else "you never use them."))
    return Deviation(name=name, draft=round(draft_rate, 2), samples=round(sample_rate, 2),
                     unit="per 1,000 words", notable=notable, explanation=explanation)


def _sentence_length(measures: DraftMeasures, fingerprint: Fingerprint) -> Deviation:
    stats = fingerprint.sentences
    draft, samples = measures.sentence_mean_words, stats.mean_words
    # The mean of n sentences wanders by stdev / sqrt(n): beyond twice that, and 3 words.
    margin = max(3.0, 2 * stats.stdev_words / math.sqrt(max(measures.sentence_count, 1)))
    notable = measures.sentence_count > 0 and stats.count > 0 and abs(draft - samples) > margin
    if not measures.sentence_count:
        explanation = "The draft has no sentences to compare."
    elif notable:
        explanation = (f"Your sentences run about {samples:.0f} words; this draft's run "
                       f"{draft:.0f}, {'longer' if draft > samples else 'shorter'} than yours.")
    else:
        explanation = (f"Sentence length is like yours (about {draft:.0f} words; "
                       f"yours {samples:.0f}).")
    return Deviation(name="sentence_length", draft=round(draft, 2), samples=round(samples, 2),
                     unit="words per sentence", notable=notable, explanation=explanation)


def _markers_used(measures: DraftMeasures, fingerprint: Fingerprint) -> tuple[list[str],
                                                                             list[str]]:
    tokens = set(measures.tokens)
    joined = f" {' '.join(measures.tokens)} "
    go_to = [m.text for m in fingerprint.go_to_words if m.text.casefold() in tokens]
    go_to += [m.text for m in fingerprint.go_to_phrases if f" {m.text.casefold()} " in joined]
    avoided = [w for w in fingerprint.avoided_words if w.casefold() in tokens]
    return go_to, avoided


def score(distance: StyleDistance, notable: int, avoided: int) -> float | None:
    """The one summary number (see the module docstring for how it is made); None when
    the distance could not be judged."""
    if distance.z is None or distance.verdict == "unknown":
        return None
    base = min(100.0, max(0.0, 100.0 - 20.0 * max(distance.z, 0.0)))
    deviations = max(0.0, 100.0 - 15.0 * notable - 10.0 * avoided)
    return round(0.8 * base + 0.2 * deviations, 1)


def _summary(distance: StyleDistance, deviations: list[Deviation], go_to: list[str],
             avoided: list[str]) -> str:
    parts = [distance.explanation]
    parts += [d.explanation for d in deviations if d.notable][:3]
    if go_to:
        parts.append("It uses your go-to words: " + ", ".join(go_to[:5]) + ".")
    if avoided:
        parts.append("It uses words you never use: " + ", ".join(avoided[:5]) + ".")
    if len(parts) == 1 and distance.verdict == "close":
        parts.append("Nothing else stands out.")
    return " ".join(p for p in parts if p)


def style_report(text: str, measures: DraftMeasures, fingerprint: Fingerprint, *,
                 language: str) -> StyleReport:
    """The draft beside the person's fingerprint, part by part, and one score."""
    distance = style_distance(fingerprint.profile, text, language=language)
    sentence = _sentence_length(measures, fingerprint)
    names = [n for n in HABITS if n in fingerprint.punctuation or n in measures.punctuation]
    punctuation = [_punctuation(n, measures.punctuation.get(n, 0.0),
                                fingerprint.punctuation.get(n, 0.0), measures.word_count)
                   for n in names]
    go_to, avoided = _markers_used(measures, fingerprint)
    notable = sum(d.notable for d in (sentence, *punctuation))
    return StyleReport(
        distance=distance, sentence_length=sentence, punctuation=punctuation,
        go_to_used=go_to, avoided_used=avoided, score=score(distance, notable, len(avoided)),
        explanation=_summary(distance, [sentence, *punctuation], go_to, avoided))


def not_comparable(measures: DraftMeasures, fingerprint: Fingerprint, *,
                   draft_language: str, language: str) -> StyleReport:
    """A draft in another language than the samples: its style is not compared (a
    distance across languages measures the language, not the person), so no score."""
    explanation = (f"The draft reads as {draft_language!r} and the samples are in "
                   f"{language!r}: its style cannot be compared with theirs, so it is not "
                   "scored.")
    distance = StyleDistance(value=None, typical=None, z=None, verdict="unknown",
                             explanation=explanation)
    sentence = _sentence_length(measures, fingerprint).model_copy(update={"notable": False})
    return StyleReport(distance=distance, sentence_length=sentence, score=None,
                       explanation=explanation)
