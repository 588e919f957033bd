"""Style attribution on real human prose: is the true author ranked first?

For every author in a folder of ``author/*.txt`` (default: the packaged corpora of
``bench/corpora.py``, exported to a temp dir), a profile is built from the first N
words of their training texts (N = 500, 1,000, 2,500) and up to five other texts of
theirs (at least 1,000 words each, never overlapping the training words) are held
out. Each held-out text is attributed among all authors, and top-1 accuracy is
printed per N for:

* ``cosine_delta``: ``stylometry.rank_authors`` (z-scores over the candidates);
* ``persona_alone``: the author whose ``style_distance`` is lowest, each persona
  measured only in its own units (no other authors: what validation uses);
* ``burrows_delta``: Burrows' classic Delta (150 most frequent words, Manhattan), a
  simple baseline measured in the same run;
* ``type_token``: nearest type-token ratio (a naive "vocabulary" baseline);
* ``chance``: 1 / number of authors.

Then the verdict calibration: the z of ``style_distance`` for each held-out text
against its own author's persona ("same") and against every other persona
("other"), as quantiles, and the share of each judged close / near / far.

    flock /tmp/bench.lock .venv/bin/python bench/style_attribution.py [--corpus DIR]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from personae.personas.writing_block import StyleProfile

try:
    from bench.corpora import CORPORA, export
except ModuleNotFoundError:  # run as a script: bench/ itself is on the path
    from corpora import CORPORA, export  # type: ignore[no-redef]

from personae.writing.stylometry import (
    CLOSE_Z,
    NEAR_Z,
    profile_of,
    rank_authors,
    style_distance,
)
from personae.writing.text import words

SIZES = (500, 1000, 2500)
MIN_TEST_WORDS = 1000
MAX_HELD_OUT = 5
METHODS = ("cosine_delta", "persona_alone", "burrows_delta", "type_token")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class Author:
    name: str
    training: list[str]  # whitespace words of the training texts, in order
    held_out: list[str]  # held-out texts, each its first ``test_words`` words


def load_authors(corpus: Path, *, test_words: int = MIN_TEST_WORDS,
                 max_held_out: int = MAX_HELD_OUT, need: int = max(SIZES)) -> list[Author]:
    """Authors with ``need`` training words and at least one held-out text."""
    authors = []
    for folder in sorted(p for p in corpus.iterdir() if p.is_dir()):
        texts = [f.read_text(encoding="utf-8").split() for f in sorted(folder.glob("*.txt"))]
        held, training = [], []
        for text in reversed(texts):  # hold out the last long texts, train on the rest
            if len(held) < max_held_out and len(text) >= test_words and len(texts) - len(held) > 1:
                held.append(" ".join(text[:test_words]))
            else:
                training = text + training
        if held and len(training) >= need:
            authors.append(Author(folder.name, training, held))
    return authors


def _burrows(train: Mapping[str, str], text: str, language: str) -> str:
    counts = {name: Counter(words(t, language)) for name, t in train.items()}
    total = sum(counts.values(), Counter())
    top = [w for w, _ in total.most_common(150)]
    rel = {name: {w: c[w] / max(sum(c.values()), 1) for w in top} for name, c in counts.items()}
    mean = {w: statistics.fmean(r[w] for r in rel.values()) for w in top}
    sd = {w: statistics.pstdev(r[w] for r in rel.values()) or 1e-9 for w in top}
    mine = Counter(words(text, language))
    n = max(sum(mine.values()), 1)
    z = {w: (mine[w] / n - mean[w]) / sd[w] for w in top}
    return min(rel, key=lambda name: sum(abs(z[w] - (rel[name][w] - mean[w]) / sd[w]) for w in top))


def _ttr(text: str, language: str, length: int = 500) -> float:
    tokens = words(text, language)[:length]
    return len(set(tokens)) / max(len(tokens), 1)


def _persona_alone(profiles: Mapping[str, StyleProfile], text: str, language: str) -> str:
    def score(name: str) -> float:
        distance = style_distance(profiles[name], text, language=language)
        return distance.value if distance.value is not None else math.inf
    return min(sorted(profiles), key=score)


def _profiles(train: Mapping[str, str], language: str) -> dict[str, StyleProfile]:
    return {name: profile_of([text], language=language) for name, text in train.items()}


def evaluate(authors: Sequence[Author], size: int, *, language: str = "en",
             methods: Sequence[str] = METHODS) -> dict[str, float]:
    """Top-1 accuracy of each method with ``size`` training words per author."""
    train = {a.name: " ".join(a.training[:size]) for a in authors}
    profiles = _profiles(train, language)
    ttr = {name: _ttr(text, language) for name, text in train.items()}
    pickers: dict[str, Callable[[str], str]] = {
        "cosine_delta": lambda t: rank_authors(profiles, t, language=language)[0][0],
        "persona_alone": lambda t: _persona_alone(profiles, t, language),
        "burrows_delta": lambda t: _burrows(train, t, language),
        "type_token": lambda t: min(sorted(ttr), key=lambda n: abs(ttr[n] - _ttr(t, language))),
    }
    hits = Counter[str]()
    trials = 0
    for author in authors:
        for text in author.held_out:
            trials += 1
            for method in methods:
                hits[method] += pickers[method](text) == author.name
    result = {method: hits[method] / trials for method in methods}
    result["chance"] = 1 / len(authors)
    result["trials"] = trials
    return result


def calibrate(authors: Sequence[Author], size: int, *,
              language: str = "en") -> dict[str, list[float]]:
    """The z of each held-out text against its own persona ("same") and the others."""
    train = {a.name: " ".join(a.training[:size]) for a in authors}
    profiles = _profiles(train, language, old=False)
    found: dict[str, list[float]] = {"same": [], "other": []}
    for author in authors:
        for text in author.held_out:
            for name, profile in profiles.items():
                z = style_distance(profile, text, language=language).z
                if z is not None:
                    found["same" if name == author.name else "other"].append(z)
    return found


def _verdict_share(values: Sequence[float]) -> str:
    close = sum(z <= CLOSE_Z for z in values) / len(values)
    near = sum(CLOSE_Z < z <= NEAR_Z for z in values) / len(values)
    return f"close {close:.2f} near {near:.2f} far {1 - close - near:.2f}"


def _report_calibration(authors: Sequence[Author]) -> None:
    print(f"  verdict calibration (z of style_distance; close <= {CLOSE_Z}, near <= {NEAR_Z})")
    print(f"  {'words':>6} {'texts':>6} " + " ".join(f"{'q' + str(q):>7}" for q in QUANTILES))
    for size in SIZES:
        for kind, values in calibrate(authors, size).items():
            if not values:
                continue
            cuts = statistics.quantiles(values, n=20, method="inclusive")
            figures = " ".join(f"{cuts[round(q * 20) - 1]:>7.2f}" for q in QUANTILES)
            print(f"  {size:>6} {kind:>6} {figures}   {_verdict_share(values)}")


def _report(label: str, authors: Sequence[Author]) -> None:
    print(f"corpus {label}: {len(authors)} authors, "
          f"{sum(len(a.held_out) for a in authors)} held-out texts of {MIN_TEST_WORDS} words")
    print(f"  {'words':>6} " + " ".join(f"{m:>17}" for m in (*METHODS, "chance")))
    for size in SIZES:
        started = time.perf_counter()
        result = evaluate(authors, size)
        figures = " ".join(f"{result[m]:>17.3f}" for m in (*METHODS, "chance"))
        print(f"  {size:>6} {figures}   ({time.perf_counter() - started:.1f} s)")
        print(f"  {size:>6} cosine_delta/chance {result['cosine_delta'] / result['chance']:.1f}x, "
              f"cosine_delta/burrows_delta "
              f"{result['cosine_delta'] / max(result['burrows_delta'], 1e-9):.2f}")
    _report_calibration(authors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, action="append",
                        help="a folder of author/*.txt (repeatable; default: the packaged ones)")
    args = parser.parse_args()
    if args.corpus:
        for corpus in args.corpus:
            _report(str(corpus), load_authors(corpus))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in CORPORA:
            _report(name, load_authors(export(name, Path(tmp) / name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
