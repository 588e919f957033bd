"""Draft validation speed: ``validate`` on 3,000-character drafts.

Target: the median call takes **<= 10 ms** for a 3,000-character draft, on every
draft kind: English prose with emoji and hashtags, Chinese, and a link-heavy post,
each validated for X (weighted counting), LinkedIn (characters, the "see more" fold)
and Bluesky (graphemes) against a writing persona whose fingerprint is measured from
~3,000 words of samples. The baseline, measured in the same run on the same drafts,
is the least any validation must do: count the characters and tokenize the words
(``wordfreq.tokenize``); the ratio says what the rest costs.

Run: ``.venv/bin/python bench/writing_validate.py [--quick]`` (default 300 calls per
draft and platform; ``--quick``: 60).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import wordfreq

from _common import Report, parse_args, percentile
from personae.personas.schema import PersonaDefinition
from personae.personas.writing_block import Onboarding, SampleSummary, WritingBlock
from personae.writing.counting import count
from personae.writing.fingerprint import measure
from personae.writing.platforms import platform
from personae.writing.validation import validate

TARGET_MS = 10.0
DRAFT_CHARS = 3000
PLATFORMS = ("x", "linkedin", "bluesky")

_PARAGRAPHS = [
    "I spent last week rebuilding our onboarding flow \u2014 again. The first version asked "
    "for eleven fields before anyone saw the product; the new one asks for two. "
    "Sign-ups went up, support tickets went down, and nobody missed the other nine.",
    "Here's the thing I keep relearning: people don't read instructions, they read "
    "screens. If the screen is clear, the instructions are noise. If it isn't, no "
    "amount of tooltips will save it \U0001F605",
    "Three things that helped: watching five real users try it (painful, useful), "
    "cutting every sentence that started with 'simply', and shipping on a Tuesday "
    "so we had the week to fix what broke. #product #ux #startups",
    "We still got plenty wrong. The empty state was confusing, the invite email "
    "landed in spam for half our testers, and I wrote a changelog nobody asked for. "
    "But it's better than it was, and better is the job \U0001F680",
]
_CHINESE = ("\u6211\u4eec\u4e0a\u5468\u91cd\u65b0\u8bbe\u8ba1\u4e86\u6ce8\u518c\u6d41\u7a0b\u3002"
            "\u7b2c\u4e00\u7248\u8981\u6c42\u586b\u5199\u5341\u4e00\u4e2a\u5b57\u6bb5\uff0c"
            "\u65b0\u7248\u53ea\u8981\u4e24\u4e2a\u3002\u6ce8\u518c\u4eba\u6570\u4e0a\u5347"
            "\u4e86\uff0c\u5ba2\u670d\u95ee\u9898\u4e5f\u5c11\u4e86\u3002\U0001F44D ")
_LINKS = ("Worth reading this week: https://example.com/blog/2026/11/onboarding-lessons-"
          "from-five-user-tests?utm_source=newsletter and the follow-up at "
          "https://docs.example.org/guides/empty-states#first-run, plus example.com/notes. ")


def _fill(unit: str) -> str:
    """``unit`` repeated and cut to DRAFT_CHARS characters, at a space."""
    text = (unit * (DRAFT_CHARS // len(unit) + 2))[:DRAFT_CHARS]
    return text.rsplit(" ", 1)[0] if " " in text[-40:] else text


DRAFTS = {
    "english_emoji_hashtags": _fill("\n\n".join(_PARAGRAPHS) + "\n\n"),
    "chinese": _fill(_CHINESE),
    "url_heavy": _fill(_LINKS + _PARAGRAPHS[0] + " "),
}


def _persona() -> PersonaDefinition:
    samples = [" ".join(_PARAGRAPHS[i:] + _PARAGRAPHS[:i]) for i in range(4)] * 12
    block = WritingBlock(onboarding=Onboarding(name="Ana", banned_words=["synergy", "leverage"]),
                         fingerprint=measure(samples, language="en"),
                         samples=SampleSummary(count=len(samples), words=0, sha256="0" * 64))
    return PersonaDefinition(id="ana", name="Ana", language="en", writing=block)


def _time_ms(call: Callable[[], object], rounds: int) -> list[float]:
    call()  # warm caches (the language identifier, the platform registry)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=None, help="calls per draft and platform")


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], _args)
    rounds = args.rounds or (60 if args.quick else 300)
    definition, report = _persona(), Report()
    for name, text in DRAFTS.items():
        report.value(f"{name}_chars", len(text))
        base = _time_ms(lambda t=text: (count(t, "characters"), wordfreq.tokenize(t, "en")),
                        rounds)
        report.value(f"{name}_baseline_p50_ms", percentile(base, 50))
        for platform_id in PLATFORMS:
            spec = platform(platform_id)
            times = _time_ms(lambda t=text, s=spec: validate(  # type: ignore[misc]
                t, s, persona_id="ana", version=1, definition=definition), rounds)
            p50, p95 = percentile(times, 50), percentile(times, 95)
            label = f"{name}_{platform_id}"
            report.value(f"{label}_p50_ms", p50)
            report.value(f"{label}_p95_ms", p95)
            report.value(f"{label}_ratio_vs_baseline", p50 / percentile(base, 50), 1)
            report.check(f"{label}_p50", p50 <= TARGET_MS, f"{p50:.2f} ms <= {TARGET_MS} ms")
    return report.finish()


if __name__ == "__main__":
    raise SystemExit(main())
