"""Evidence quotes: verbatim in one sample, forgiving only what a model cannot see."""

from __future__ import annotations

import time

import pytest

from personae.writing.evidence import EvidenceIndex, long_enough, normalise

SAMPLES = [
    "I don\u2019t write threads \u2014 I write one honest post.\nThen I go for a walk.",
    'She said \u201cship it\u201d and we did\u2026 on a Friday.',
    "\u6211\u4eec\u4eca\u5929\u5728\u5de5\u5382\u91cc\u8ba8\u8bba\u4e86\u65b0\u7684\u751f\u4ea7\u8ba1\u5212\u3002",
]


@pytest.fixture(scope="module")
def index() -> EvidenceIndex:
    return EvidenceIndex(SAMPLES)


@pytest.mark.parametrize("quote", [
    "I don't write threads - I write one honest post.",  # straight apostrophe, hyphen
    "i DON\u2019T write   THREADS",  # case and spaces
    "one honest post. Then I go",  # a line break in the sample, a space in the quote
    'She said "ship it" and we did...',  # curly quotes and the ellipsis character
    "\u201cI write one honest post\u201d",  # quote marks wrapped around the quote
    "...we did\u2026 on a Friday",  # a leading ellipsis from the model
])
def test_normalised_quotes_hold(index: EvidenceIndex, quote: str) -> None:
    check = index.check(quote)
    assert check.holds, check


@pytest.mark.parametrize(("quote", "reason"), [
    ("I write two honest posts", "not in the samples"),  # a changed word
    ("I don't write long threads", "not in the samples"),  # an added word
    ("a walk. She said", "not in the samples"),  # spans two samples
    ("honest post", "too short"),
    ("  ", "too short"),
    ("\u6211\u4eec\u4eca\u5929\u5728\u5de5\u5382", "too short"),  # 7 CJK characters
])
def test_changed_spanning_and_short_quotes_fail(index: EvidenceIndex, quote: str,
                                                reason: str) -> None:
    check = index.check(quote)
    assert not check.holds
    assert check.reason == reason


def test_a_long_enough_cjk_quote_holds_without_spaces(index: EvidenceIndex) -> None:
    quote = "\u5728\u5de5\u5382\u91cc\u8ba8\u8bba\u4e86\u65b0\u7684\u751f\u4ea7\u8ba1\u5212"
    assert long_enough(quote)
    assert index.check(quote).holds


def test_holding_keeps_good_quotes_once_in_order(index: EvidenceIndex) -> None:
    quotes = ["Then I go for a walk", "invented words here", "then i go for a walk.",
              "I write one honest post"]
    assert index.holding(quotes) == ["Then I go for a walk", "I write one honest post"]


def test_normalise_is_the_comparison_form() -> None:
    assert normalise("  A\u2019s\u2014\u201cB\u201d\u2026\n\tC ") == "a's-\"b\"... c"


def test_a_megabyte_of_samples_is_checked_quickly() -> None:
    samples = [f"Sample {n}: the quick brown fox jumps over the lazy dog again. " * 40
               for n in range(400)]  # ~1 MB
    start = time.perf_counter()
    index = EvidenceIndex(samples)
    assert index.check("Sample 399: the quick brown fox").holds
    assert not index.check("the quick brown cat").holds
    assert time.perf_counter() - start < 5  # generous: a few hundred ms on a slow core
