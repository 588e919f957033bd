"""Style distance: how far a text sits from a person's samples.

The features (``style_features``) are the shares of the language's most frequent
words (``w:``, from wordfreq's reference list: function words carry style more than
topic) and of the samples' most frequent character 2-4 grams (``c:``). Two settings:

* :func:`rank_authors` (attribution among candidates) is Cosine Delta (Smith &
  Aldridge 2011; Evert et al. 2017): each feature z-scored by its mean and spread over
  the candidates, z clipped to +-2, and the cosine distance between the text's and
  each candidate's z-vector; the word block (1,000 words) and the n-gram block (1,000
  grams) each give a distance, and their mean ranks.
* :func:`style_distance` (one persona, no other authors: validation) z-scores the
  words against the language at large instead (``style_features.population_z``:
  reference frequency as the mean, a Taylor's-law spread) and takes the cosine
  distance between the samples' and the draft's z-vectors over 2,000 words. It is
  judged against the same distance of the person's own chunks (of 100, 200 and 400
  words) to the rest of their samples, blocked so a chunk is not compared with the
  rest of its own post; a draft is judged on the chunk length nearest its own.

``bench/style_attribution.py`` measured every choice here on two corpora (README,
"Writing personas"); character n-grams help among candidates, not alone (they have no
population reference).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence

from personae.personas.writing_block import StyleProfile
from personae.writing import style_features as sf
from personae.writing.reports import StyleDistance
from personae.writing.text import words

METHOD = 2
PROFILE_WORDS = 2000
PROFILE_NGRAMS = 1000
RANK_WORDS = 1000
RANK_NGRAMS = 1000
NGRAM_WEIGHT = 0.5  # of the n-gram block's distance in rank_authors
DISTANCE_WORDS = 2000
BASELINE_SIZES = (100, 200, 400, 800)
MAX_BASELINE_CHUNKS = 40
BASELINE_FOLDS = 5
MIN_WORDS = 40  # below this a distance is noise
# Verdict thresholds on z = (distance - own chunks' mean) / their widest stdev, from
# bench/style_attribution.py at 2,500 words of samples, held-out texts of 1,000 words
# (2026-12-01). Same author's texts: z quantiles 10/25/50/75/90% -2.7/-1.7/-0.7/0.3/1.3
# (presidents), -1.3/-0.4/0.5/1.6/2.7 (Brontes + Federalist); other authors' texts:
# -0.7/0.4/1.8/3.1/4.2 and -0.2/1.4/3.4/4.6/5.4. So about 9 in 10 (3 in 4) of a
# person's own texts are close or near, and most other authors' are far.
CLOSE_Z = 0.5
NEAR_Z = 1.5


def _word_keys(counts: Counter[str], language: str) -> list[str]:
    reference = sf.reference_words(language, PROFILE_WORDS)
    if reference:
        return [word for word, _ in reference]
    return [word for word, _ in counts.most_common(PROFILE_WORDS)]


def profile_of(texts: Sequence[str], *, language: str) -> StyleProfile:
    """The samples' feature shares and the baseline of their own held-out chunks."""
    joined = "\n".join(texts)
    counts = Counter(words(joined, language))
    if not counts:
        return StyleProfile(method=METHOD)
    grams = sf.char_ngrams(joined)
    features = sf.word_shares(counts, _word_keys(counts, language))
    features |= sf.gram_shares(grams, [g for g, _ in grams.most_common(PROFILE_NGRAMS)])
    baselines = {size: found for size in BASELINE_SIZES
                 if (found := _baseline(joined.split(), size, features, language))}
    largest = max(baselines, default=0)
    mean = baselines[largest][0] if baselines else None
    stdev = _widest(baselines) if baselines else None
    return StyleProfile(features=sf.rounded(features), baseline_mean=mean, baseline_stdev=stdev,
                        chunk_words=largest, method=METHOD, baselines=baselines)


def _baseline(raw_words: Sequence[str], size: int, features: Mapping[str, float],
              language: str) -> tuple[float, float] | None:
    """Distance of each ``size``-word chunk to the chunks outside its block (blocked
    cross-validation: ``BASELINE_FOLDS`` contiguous blocks, so a chunk is not judged
    against the rest of the same post or speech, which shares its topic)."""
    starts = range(0, len(raw_words) - size + 1, size)
    chunks = [Counter(words(" ".join(raw_words[i : i + size]), language)) for i in starts]
    chunks = chunks[:MAX_BASELINE_CHUNKS]
    if len(chunks) < 3:
        return None
    keys = _distance_words(features, language)
    folds = min(BASELINE_FOLDS, len(chunks))
    distances: list[float] = []
    for fold in range(folds):
        inside = range(fold * len(chunks) // folds, (fold + 1) * len(chunks) // folds)
        rest = sum((c for i, c in enumerate(chunks) if i not in inside), Counter[str]())
        rest_vector = sf.word_shares(rest, keys)
        distances += [_distance(rest_vector, sf.word_shares(chunks[i], keys), language)
                      for i in inside]
    return round(statistics.fmean(distances), 4), round(statistics.pstdev(distances), 4)


def _distance_words(features: Mapping[str, float], language: str) -> list[str]:
    """The words a distance counts: the reference list's, else those of the samples."""
    reference = sf.reference_words(language, DISTANCE_WORDS)
    if reference:
        return [word for word, _ in reference]
    return [key[2:] for key in features if key.startswith("w:")]


def _distance(samples: Mapping[str, float], text: Mapping[str, float], language: str) -> float:
    """Cosine distance of the two in population z (or, for a language without a
    reference list, the mean absolute z of the text against the samples)."""
    reference = sf.reference_words(language, DISTANCE_WORDS)
    if reference:
        return sf.cosine_distance(sf.population_z(samples, language, DISTANCE_WORDS),
                                  sf.population_z(text, language, DISTANCE_WORDS))
    own = {k: v for k, v in samples.items() if k.startswith("w:")}
    z = sf.own_z(text, own)
    return math.fsum(abs(x) for x in z) / max(len(z), 1)


def style_distance(profile: StyleProfile, text: str, *, language: str) -> StyleDistance:
    """How far ``text`` is from the samples, judged on the person's own chunk baseline."""
    counts = Counter(words(text, language))
    total = sum(counts.values())
    if total < MIN_WORDS or not profile.features:
        return StyleDistance(value=None, typical=profile.baseline_mean, z=None, verdict="unknown",
                             explanation=f"Too short to judge the style: {total} words "
                             f"(at least {MIN_WORDS} are needed).")
    keys = _distance_words(profile.features, language)
    value = round(_distance(profile.features, sf.word_shares(counts, keys), language), 4)
    if profile.method < METHOD:
        return StyleDistance(value=value, typical=None, z=None, verdict="unknown",
                             explanation="This persona's style profile was measured by an "
                             "older method; measure its samples again to judge the style.")
    return _judge(value, _nearest_baseline(profile, total))


def _nearest_baseline(profile: StyleProfile, text_words: int) -> tuple[float, float] | None:
    """The mean of the chunk length nearest (in ratio) the draft's own, and the largest
    spread of any chunk length (a few chunks give an unsteady spread; the largest
    separated authors best on the benchmark)."""
    if not profile.baselines:
        return None
    size = min(profile.baselines, key=lambda s: (abs(math.log(text_words / s)), s))
    return profile.baselines[size][0], _widest(profile.baselines)


def _widest(baselines: Mapping[int, tuple[float, float]]) -> float:
    return max(stdev for _, stdev in baselines.values())


_CLOSE = "about as close to your samples as your own writing is to itself"
_NEAR = "a little further from your samples than your own writing usually is"
_FAR = "much further from your samples than your own writing usually is"


def _judge(value: float, baseline: tuple[float, float] | None) -> StyleDistance:
    if baseline is None:
        return StyleDistance(value=value, typical=None, z=None, verdict="unknown",
                             explanation="There are too few samples to know how much your own "
                             "writing varies, so this distance cannot be judged yet.")
    typical, stdev = baseline
    z = round((value - typical) / max(stdev, 1e-6), 2)
    if z <= CLOSE_Z:
        verdict, said = "close", _CLOSE
    elif z <= NEAR_Z:
        verdict, said = "near", _NEAR
    else:
        verdict, said = "far", _FAR
    return StyleDistance(value=value, typical=typical, z=z, verdict=verdict,
                         explanation=f"This draft is {said} (distance {value:.2f}; yours "
                         f"typically {typical:.2f} ± {stdev:.2f}).")


def rank_authors(profiles: Mapping[str, StyleProfile], text: str, *,
                 language: str) -> list[tuple[str, float]]:
    """Candidates by Cosine Delta to ``text``, nearest first (z-scores over the candidates)."""
    usable = {name: p for name, p in profiles.items() if p.features}
    if not usable:
        return []
    vectors = [p.features for p in usable.values()]
    counts = Counter(words(text, language))
    word_keys = _rank_keys(vectors, "w:", RANK_WORDS, language)
    gram_keys = _rank_keys(vectors, "c:", RANK_NGRAMS, language)
    draft = sf.word_shares(counts, [k[2:] for k in word_keys])
    draft |= sf.gram_shares(sf.char_ngrams(text), [k[2:] for k in gram_keys])
    word_part = _block_distances(vectors, draft, word_keys)
    gram_part = _block_distances(vectors, draft, gram_keys)
    weight = NGRAM_WEIGHT if gram_keys else 0.0
    ranked = [(name, round((1 - weight) * w + weight * g, 6))
              for name, w, g in zip(usable, word_part, gram_part, strict=True)]
    return sorted(ranked, key=lambda item: (item[1], item[0]))


def _rank_keys(vectors: Sequence[Mapping[str, float]], kind: str, count: int,
               language: str) -> list[str]:
    """Words: the language's ``count`` most frequent; n-grams (and words of a language
    without a list): the ``count`` most frequent over the candidates (Burrows' MFW)."""
    reference = sf.reference_words(language, count) if kind == "w:" else ()
    if reference:
        return [f"w:{word}" for word, _ in reference]
    totals: Counter[str] = Counter()
    for vector in vectors:
        totals.update({k: v for k, v in vector.items() if k.startswith(kind)})
    return [key for key, _ in totals.most_common(count)]


def _block_distances(vectors: Sequence[Mapping[str, float]], draft: Mapping[str, float],
                     keys: Sequence[str]) -> list[float]:
    kept, means, spreads = sf.candidate_z(vectors, keys)
    text_z = sf.standardised(draft, kept, means, spreads)
    return [sf.cosine_distance(text_z, sf.standardised(v, kept, means, spreads))
            for v in vectors]
