"""Platforms are data: the shipped registry, its strict loader, one entry adds one."""

from __future__ import annotations

from importlib import resources

import pytest

from personae.errors import NotFound, ValidationFailed
from personae.quality.suite import PLATFORM_CHARS
from personae.writing.platforms import all_platforms, load_platforms, platform

SHIPPED = resources.files("personae.writing").joinpath("platforms.yaml").read_text("utf-8")
ENTRY = """
  - id: {id}
    name: Example
    limits:
      - {{field: text, max: 400, counting: graphemes, source: "example docs"}}
"""


def test_the_eight_platforms_and_their_figures() -> None:
    ids = [spec.id for spec in all_platforms()]
    assert ids == ["x", "linkedin", "instagram", "facebook", "threads", "bluesky",
                   "mastodon", "youtube"]
    figures = {spec.id: (spec.text_limit.max, spec.text_limit.counting,
                         spec.text_limit.url_length) for spec in all_platforms()}
    assert figures == {
        "x": (280, "weighted", 23), "linkedin": (3000, "characters", None),
        "instagram": (2200, "characters", None), "facebook": (63206, "characters", None),
        "threads": (500, "characters", None), "bluesky": (300, "graphemes", None),
        "mastodon": (500, "characters", 23), "youtube": (5000, "characters", None)}
    assert platform("linkedin").text_limit.shown_before_more == 210
    assert platform("instagram").hashtags.max == 5
    youtube = platform("youtube")
    assert youtube.text_limit.field == "description"
    assert youtube.limit_for("title") is not None and youtube.limit_for("title").max == 100
    assert all(limit.source for spec in all_platforms() for limit in spec.limits)


def test_aliases_and_unknown_ids() -> None:
    assert platform("Twitter").id == "x"
    with pytest.raises(NotFound) as caught:
        platform("myspace")
    assert "unknown platform 'myspace'" in caught.value.message
    assert "linkedin" in caught.value.details["known"]


def test_quality_suites_read_the_same_limits() -> None:
    for spec in all_platforms():
        assert PLATFORM_CHARS[spec.id] == spec.text_limit.max
    assert PLATFORM_CHARS["twitter"] == 280
    assert PLATFORM_CHARS["linkedin-comment"] == 1250
    assert PLATFORM_CHARS["sms"] == 160


def test_one_entry_adds_a_platform() -> None:
    table = load_platforms(SHIPPED + ENTRY.format(id="example"))
    assert table["example"].text_limit.max == 400
    assert table["example"].text_limit.counting == "graphemes"
    assert len({spec.id for spec in table.values()}) == 9


def _issues(text: str) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        load_platforms(text)
    return [f"{e['path']}: {e['message']}" for e in caught.value.details["errors"]]


def test_an_unknown_field_is_named() -> None:
    text = SHIPPED + ENTRY.format(id="example") + "    colour: blue\n"
    assert _issues(text) == ["platforms[8] (example).colour: Extra inputs are not permitted"]


def test_a_tone_outside_the_vocabulary_is_named() -> None:
    text = SHIPPED + ENTRY.format(id="example") + "    tone: {prefer: [snarky]}\n"
    (issue,) = _issues(text)
    assert issue.startswith("platforms[8] (example).tone.prefer[0]: Input should be 'formal'")


@pytest.mark.parametrize(("tail", "expected"), [
    ("    limits: []\n", "limits: List should have at least 1 item"),
    ("", "id or alias 'x' is used twice"),
    ("    tone: {prefer: [warm], avoid: [warm]}\n", "tones both preferred and avoided: warm"),
])
def test_other_malformed_entries(tail: str, expected: str) -> None:
    entry = ENTRY.format(id="x" if not tail else "example")
    if tail.startswith("    limits"):
        entry = entry.split("    limits:")[0] + tail
        tail = ""
    assert any(expected in issue for issue in _issues(SHIPPED + entry + tail))


def test_bad_yaml_and_counting_are_refused() -> None:
    assert any("not valid YAML" in i for i in _issues("platforms: [\n"))
    bad = ENTRY.format(id="example").replace("graphemes", "bytes")
    assert any("counting" in i for i in _issues("platforms:" + bad))
