"""Style distance: how far a text sits from a person's samples, in their own units.

Features are relative frequencies of the language's most frequent words (``w:``, from
the reference list: function words carry style, not topic) and of the samples' most
frequent character 3-grams (``c:``). Two settings, two ways to z-score them:

* :func:`rank_authors` (attribution among candidates) is Cosine Delta (Smith &
  Aldridge 2011; Evert et al. 2017): features z-scored by their mean and spread over
  the candidate set, as Burrows did, and the cosine distance between the text's and
  each candidate's z-vector (z clipped to +-2: a robust variant that the benchmark
  measured better than plain z on both corpora).
* :func:`style_distance` (one persona, no other authors) z-scores each feature by the
  person's own spread: ``spread`` is its standard deviation over chunks of their
  samples (floored by a Poisson count model). The distance is the mean absolute z,
  scaled to the chunk length, and it is judged against ``baseline_*``: the same
  distance of each chunk of ``chunk_words`` words to the chunks outside its block of
  the samples (blocked, so a chunk is not compared with the rest of its own post).
  The person's own spread needs neither other authors nor a reference list (3-grams
  have none); the attribution benchmark (``bench/style_attribution.py``) measures both
  settings (its ``cosine_delta`` and ``persona_alone`` columns).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import regex

from personae.personas.writing_block import StyleProfile
from personae.writing import lexicon
from personae.writing.reports import StyleDistance
from personae.writing.text import words

FUNCTION_WORDS = 300
CHAR_NGRAMS = 300
# Measured by bench/style_attribution.py (see the module docstring): candidates are
# compared on 300 words with z clipped to +-2, one persona on its 150 most frequent words;
# character 3-grams lowered accuracy in both settings, so they weigh nothing yet.
RANK_WORDS = 300
DISTANCE_WORDS = 150
RANK_NGRAMS = 0
Z_CLIP = 2.0
NGRAM = 3
MIN_WORDS = 40  # below this a distance is noise
MAX_BASELINE_CHUNKS = 40
BASELINE_FOLDS = 5
_SPACES = regex.compile(r"\s+")
Vector = dict[str, float]


def _char_ngrams(text: str) -> Counter[str]:
    flat = _SPACES.sub(" ", text.casefold())
    return Counter(flat[i : i + NGRAM] for i in range(len(flat) - NGRAM + 1))


def _function_words(tokens: Sequence[str], language: str) -> tuple[str, ...]:
    reference = lexicon.common_words(language, FUNCTION_WORDS)
    if reference:
        return reference
    return tuple(word for word, _ in Counter(tokens).most_common(FUNCTION_WORDS))


def _features(tokens: Sequence[str], grams: Counter[str], keys: Sequence[str]) -> Vector:
    counts = Counter(tokens)
    total_words = max(len(tokens), 1)
    total_grams = max(sum(grams.values()), 1)
    vector: Vector = {}
    for key in keys:
        kind, item = key[:2], key[2:]
        vector[key] = (counts[item] / total_words) if kind == "w:" else (grams[item] / total_grams)
    return vector


def _chunks(raw_words: Sequence[str], size: int) -> list[str]:
    starts = range(0, len(raw_words) - size + 1, size)
    return [" ".join(raw_words[i : i + size]) for i in starts]


def _chunk_size(total_words: int) -> int:
    return max(100, min(400, total_words // 5))


def _spread(vectors: Sequence[Vector], means: Vector, size: int) -> Vector:
    spread: Vector = {}
    for key, mean in means.items():
        per_unit = size if key.startswith("w:") else size * 5  # ~5 3-grams per word
        floor = math.sqrt(max(mean, 1.0 / per_unit) / per_unit)
        observed = statistics.pstdev(v[key] for v in vectors) if len(vectors) > 2 else 0.0
        spread[key] = max(observed, floor)
    return spread


def profile_of(texts: Sequence[str], *, language: str) -> StyleProfile:
    """The person's feature frequencies, their spread and the held-out chunk baseline."""
    joined = "\n".join(texts)
    tokens = words(joined, language)
    if not tokens:
        return StyleProfile()
    grams = _char_ngrams(joined)
    keys = [f"w:{w}" for w in _function_words(tokens, language)]
    keys += [f"c:{g}" for g, _ in grams.most_common(CHAR_NGRAMS)]
    features = _features(tokens, grams, keys)
    size = _chunk_size(len(tokens))
    raw_words = joined.split()
    chunk_vectors = [_vector_of(chunk, keys, language) for chunk in _chunks(raw_words, size)]
    spread = _spread(chunk_vectors, features, size)
    mean, stdev = _baseline(chunk_vectors, _distance_keys(features), size)
    return StyleProfile(features=features, spread=spread, baseline_mean=mean,
                        baseline_stdev=stdev, chunk_words=size)


def _vector_of(text: str, keys: Sequence[str], language: str) -> Vector:
    return _features(words(text, language), _char_ngrams(text), keys)


def _baseline(chunks: Sequence[Vector], keys: Sequence[str],
              size: int) -> tuple[float | None, float | None]:
    """Distance of each chunk to the chunks outside its block (blocked cross-validation:
    ``BASELINE_FOLDS`` contiguous blocks, so a chunk is not judged against the rest of
    the same post or speech, which shares its topic)."""
    chunks = chunks[:MAX_BASELINE_CHUNKS]
    if len(chunks) < 3:
        return None, None
    folds = min(BASELINE_FOLDS, len(chunks))
    distances: list[float] = []
    for fold in range(folds):
        inside = range(fold * len(chunks) // folds, (fold + 1) * len(chunks) // folds)
        rest = [c for i, c in enumerate(chunks) if i not in inside]
        means = {k: statistics.fmean(c[k] for c in rest) for k in keys}
        spread = _spread(rest, means, size)
        distances.extend(_delta(chunks[i], means, spread, size, size) for i in inside)
    return statistics.fmean(distances), statistics.pstdev(distances)


def _delta(text: Vector, means: Vector, spread: Vector, text_words: int, size: int) -> float:
    """Mean absolute z of ``text`` against one person, scaled to ``size``-word chunks."""
    scale = math.sqrt(min(text_words, 4 * size) / size)
    total = sum(abs(text[k] - means[k]) / spread[k] for k in means)
    return total * scale / max(len(means), 1)


def style_distance(profile: StyleProfile, text: str, *, language: str) -> StyleDistance:
    """How far ``text`` is from the samples, judged on the person's own chunk baseline."""
    tokens = words(text, language)
    if len(tokens) < MIN_WORDS or not profile.features:
        return StyleDistance(value=None, typical=profile.baseline_mean, z=None, verdict="unknown",
                             explanation=f"Too short to judge the style: {len(tokens)} words "
                             f"(at least {MIN_WORDS} are needed).")
    keys = _distance_keys(profile.features)
    spread = profile.spread or _spread([], profile.features, profile.chunk_words or 200)
    vector = _features(tokens, _char_ngrams(text), keys)
    means = {key: profile.features[key] for key in keys}
    value = _delta(vector, means, spread, len(tokens), profile.chunk_words or 200)
    return _judge(round(value, 4), profile)


_CLOSE = "about as close to your samples as your own posts are to each other"
_NEAR = "a little further from your samples than your own posts usually are"
_FAR = "much further from your samples than your own posts ever usually are"


def _judge(value: float, profile: StyleProfile) -> StyleDistance:
    typical, stdev = profile.baseline_mean, profile.baseline_stdev
    if typical is None or stdev is None:
        return StyleDistance(value=value, typical=None, z=None, verdict="unknown",
                             explanation="There are too few samples to know how much your own "
                             "posts vary, so this distance cannot be judged yet.")
    z = round((value - typical) / max(stdev, 1e-6), 2)
    if z <= 1:
        verdict, said = "close", _CLOSE
    elif z <= 2.5:
        verdict, said = "near", _NEAR
    else:
        verdict, said = "far", _FAR
    return StyleDistance(value=value, typical=round(typical, 4), z=z, verdict=verdict,
                         explanation=f"This draft is {said} (distance {value:.2f}; yours "
                         f"typically {typical:.2f} ± {stdev:.2f}).")


def rank_authors(profiles: Mapping[str, StyleProfile], text: str, *,
                 language: str) -> list[tuple[str, float]]:
    """Candidates by Cosine Delta to ``text``, nearest first (z-scores over the candidates)."""
    usable = {name: p for name, p in profiles.items() if p.features}
    if not usable:
        return []
    keys = _most_frequent(usable.values())
    vector = _features(words(text, language), _char_ngrams(text), keys)
    means = {k: statistics.fmean(p.features[k] for p in usable.values()) for k in keys}
    spreads = {k: statistics.pstdev(p.features[k] for p in usable.values()) for k in keys}
    keys = [k for k in keys if spreads[k] > 0]
    text_z = [_clip((vector[k] - means[k]) / spreads[k]) for k in keys]
    ranked = []
    for name, profile in usable.items():
        own_z = [_clip((profile.features[k] - means[k]) / spreads[k]) for k in keys]
        ranked.append((name, _cosine_distance(text_z, own_z)))
    return sorted(ranked, key=lambda item: (item[1], item[0]))


def _distance_keys(features: Mapping[str, float], word_count: int = DISTANCE_WORDS) -> list[str]:
    """The ``word_count`` most frequent words and ``RANK_NGRAMS`` most frequent 3-grams."""
    ordered = sorted(features, key=lambda k: (-features[k], k))
    return ([k for k in ordered if k.startswith("w:")][:word_count]
            + [k for k in ordered if k.startswith("c:")][:RANK_NGRAMS])


def _most_frequent(profiles: Iterable[StyleProfile]) -> list[str]:
    """The features all candidates share, most frequent first: ``RANK_WORDS`` words and
    ``RANK_NGRAMS`` 3-grams by their mean frequency over the candidates (Burrows' MFW)."""
    profiles = list(profiles)
    shared = set.intersection(*(set(p.features) for p in profiles))
    return _distance_keys({k: sum(p.features[k] for p in profiles) for k in shared}, RANK_WORDS)


def _clip(z: float) -> float:
    """One feature far off (a name, a topic word) should not outvote the rest."""
    return max(-Z_CLIP, min(Z_CLIP, z))


def _cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0:
        return 1.0
    return round(1.0 - sum(x * y for x, y in zip(a, b, strict=True)) / norm, 6)
