"""validate(): hard violations by each platform's rules, meters, and the style report."""

from __future__ import annotations

import pytest

from personae.personas.schema import PersonaDefinition
from personae.personas.writing_block import (
    Confidence,
    Fingerprint,
    Marker,
    Onboarding,
    SampleSummary,
    SentenceStats,
    WritingBlock,
)
from personae.writing.platforms import platform
from personae.writing.stylometry import profile_of
from personae.writing.validation import NO_SAMPLES, hashtags_in, validate

SAMPLES = [
    "I shipped the thing on Friday \u2014 and nothing broke. Honestly, that still surprises me. "
    "Small teams move fast when nobody waits for permission \u2014 we just try it.",
    "Here is what I learned this year \u2014 slowly. Ship small. Talk to customers. "
    "Write it down before you forget why you decided it.",
    "Most advice about hiring is noise \u2014 mine included. Honestly, the best people I hired "
    "asked better questions than I did, and they asked them early.",
] * 8
ENGLISH = ("We shipped the new onboarding flow this week and the first numbers look good. "
           "Customers finish setup faster and ask fewer questions.")


def _fingerprint(banned_profile: bool = True) -> Fingerprint:
    return Fingerprint(
        language="en", sample_count=len(SAMPLES), word_count=650,
        confidence=Confidence(level="low", words=650, note="Only 650 words of samples."),
        sentences=SentenceStats(count=60, mean_words=11.0, median_words=10.0, stdev_words=5.0,
                                p10_words=3.0, p90_words=20.0),
        go_to_words=[Marker(text="honestly", count=8, per_1000=12.0)],
        avoided_words=["synergy"],
        punctuation={"em_dash": 30.0, "exclamation": 0.0},
        profile=profile_of(SAMPLES, language="en"))


def _persona(writing: bool = True, banned: list[str] | None = None) -> PersonaDefinition:
    block = None
    if writing:
        block = WritingBlock(onboarding=Onboarding(name="Ana", banned_words=banned or []),
                             fingerprint=_fingerprint(),
                             samples=SampleSummary(count=3, words=650, sha256="0" * 64))
    return PersonaDefinition(id="ana", name="Ana", language="en", writing=block)


def _check(text: str, platform_id: str, **kwargs: object):  # type: ignore[no-untyped-def]
    definition = kwargs.pop("definition", None) or _persona(writing=False)
    return validate(text, platform(platform_id), persona_id="ana", version=3,
                    definition=definition, **kwargs)  # type: ignore[arg-type]


def test_a_draft_within_limits_meets_them_with_meters() -> None:
    report = _check(ENGLISH, "x")
    assert report.meets_limits and report.violations == []
    meter, tags = report.meters
    assert (meter.name, meter.shown, meter.counting) == ("text", f"{len(ENGLISH)}/280",
                                                        "weighted")
    assert (tags.name, tags.shown, tags.hard) == ("hashtags", "0/2", False)  # a guide on X
    assert (report.platform, report.persona_id, report.persona_version) == ("x", "ana", 3)
    assert report.language == "en"


def test_too_long_by_x_weights() -> None:
    text = "\u65e5\u672c" * 70 + "!"  # 140 CJK characters weigh 280, plus one
    report = _check(text, "x")
    (violation,) = report.violations
    assert (violation.code, violation.limit, violation.actual) == ("too_long", 280, 281)
    assert report.meters[0].shown == "281/280" and not report.meets_limits
    assert _check("\u65e5\u672c" * 70, "x").meets_limits


def test_too_long_on_bluesky_counts_graphemes() -> None:
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467"
    assert _check(family * 300, "bluesky").meets_limits  # 1,500 code points, 300 graphemes
    assert _check(family * 301, "bluesky").violations[0].code == "too_long"


def test_mastodon_urls_count_23() -> None:
    long_link = "https://example.com/" + "a" * 600
    report = _check(f"Read this: {long_link}", "mastodon")
    assert report.meets_limits and report.meters[0].shown == f"{11 + 23}/500"


def test_youtube_title_and_description() -> None:
    report = _check(ENGLISH, "youtube", title="t" * 101)
    assert [m.name for m in report.meters] == ["description", "see_more", "title", "hashtags"]
    (violation,) = report.violations
    assert (violation.code, violation.limit, violation.actual) == ("too_long", 100, 101)
    assert "title" in violation.message
    note = _check(ENGLISH, "x", title="Hello").warnings
    assert any("no title" in w for w in note)


def test_too_many_hashtags_on_instagram() -> None:
    tags = " ".join(f"#tag{i}" for i in range(6))
    report = _check(f"{ENGLISH} {tags}", "instagram")
    (violation,) = report.violations
    assert (violation.code, violation.limit, violation.actual) == ("too_many_hashtags", 5, 6)
    assert next(m for m in report.meters if m.name == "hashtags").shown == "6/5"
    assert _check(f"{ENGLISH} {' '.join(tags.split()[:5])}", "instagram").meets_limits


def test_hashtags_are_not_url_fragments_or_numbers() -> None:
    assert hashtags_in("#one two#three https://a.com/#frag #2026 #caf\u00e9 &#39;") == [
        "#one", "#caf\u00e9"]


def test_see_more_meter_is_soft() -> None:
    text = ("word " * 60).strip()
    report = _check(text, "linkedin")
    fold = next(m for m in report.meters if m.name == "see_more")
    assert (fold.shown, fold.hard) == (f"{len(text)}/210", False)
    assert report.meets_limits  # past the fold is not a violation
    soft = next(m for m in report.meters if m.name == "hashtags")
    assert not soft.hard


def test_banned_words_whole_and_casefolded() -> None:
    definition = _persona(banned=["Leverage", "game changer", "ai"])
    report = _check("We LEVERAGE data; it was a Game Changer. Said plainly.", "linkedin",
                    definition=definition)
    (violation,) = [v for v in report.violations if v.code == "banned_word"]
    assert violation.words == ["Leverage", "game changer"]  # "ai" is not in "plainly"
    assert not report.meets_limits


def test_wrong_language() -> None:
    german = ("Wir haben diese Woche den neuen Ablauf eingef\u00fchrt und die ersten Zahlen "
              "sehen gut aus. Kunden sind schneller fertig.")
    report = _check(german, "linkedin")
    (violation,) = report.violations
    assert violation.code == "wrong_language" and violation.words == ["de"]
    assert _check("Danke sch\u00f6n, bis morgen!", "linkedin").meets_limits  # too short


def test_empty_draft_does_not_crash() -> None:
    report = _check("", "x")
    assert report.meets_limits and report.meters[0].shown == "0/280"
    assert report.language is None
    assert _check("", "x", definition=_persona()).style is not None


def test_no_writing_block_no_style_and_a_warning() -> None:
    report = _check(ENGLISH, "linkedin")
    assert report.style is None and NO_SAMPLES in report.warnings


def test_style_report_parts() -> None:
    definition = _persona()
    draft = ("Honestly, we tried synergy. It worked. We were happy with the result. "
             "We will do it again next quarter, with the same team and the same plan. ") * 2
    report = _check(draft, "linkedin", definition=definition)  # 56 words: ~1.7 em dashes due
    style = report.style
    assert style is not None
    assert style.go_to_used == ["honestly"] and style.avoided_used == ["synergy"]
    em_dash = next(d for d in style.punctuation if d.name == "em_dash")
    assert em_dash.notable
    assert em_dash.explanation == ("You use em dashes about 30 times per 1,000 words; "
                                   "this draft uses none.")
    assert style.score is not None and 0 <= style.score <= 100 and style.explanation
    assert "Only 650 words of samples." in report.warnings  # low confidence is said


def test_style_score_prefers_the_persons_own_voice() -> None:
    definition = _persona()
    own = _check(" ".join(SAMPLES[:3]), "linkedin", definition=definition).style
    other = _check("Pursuant to the aforementioned agreement, the parties shall convene "
                   "quarterly; minutes shall be recorded; objections shall be filed in "
                   "writing within thirty days of receipt of notice. " * 2, "linkedin",
                   definition=definition).style
    assert own is not None and other is not None
    assert own.score is not None and other.score is not None
    assert own.score > other.score


def test_a_draft_in_another_language_gets_no_style_score() -> None:
    french = ("Nous avons lanc\u00e9 le nouveau parcours cette semaine et les premiers "
              "chiffres sont bons. Les clients terminent plus vite et posent moins de "
              "questions. Nous allons continuer ainsi, avec la m\u00eame \u00e9quipe et "
              "le m\u00eame plan, jusqu'\u00e0 la fin du trimestre prochain.") * 2
    report = _check(french, "x", definition=_persona())
    assert [v.code for v in report.violations if v.code == "wrong_language"]
    style = report.style
    assert style is not None and style.score is None
    assert style.distance.verdict == "unknown"
    assert "cannot be compared" in style.explanation and "'fr'" in style.explanation
    assert style.go_to_used == [] and style.punctuation == []


def test_a_draft_too_short_to_judge_gets_no_style_score() -> None:
    style = _check("Honestly, we shipped it \u2014 and it held up.", "x",
                   definition=_persona()).style
    assert style is not None and style.distance.verdict == "unknown"
    assert style.score is None


@pytest.mark.parametrize("platform_id", ["x", "linkedin", "instagram", "facebook", "threads",
                                         "bluesky", "mastodon", "youtube"])
def test_every_platform_validates(platform_id: str) -> None:
    report = _check(ENGLISH + " #launch", platform_id, definition=_persona())
    assert report.meets_limits and report.meters[0].used > 0
