"""Check a draft against a platform's hard rules and the persona's measured voice.

Hard violations (they decide ``meets_limits``): a limit broken by the platform's own
counting (``too_long``), more hashtags than the platform allows
(``too_many_hashtags``), a word the person banned (``banned_word``), and a draft
confidently in another language than the persona's (``wrong_language``). Meters show
every limit (``271/280``), the hashtag count and the "see more" fold (soft).

The style report (when the persona has a ``writing`` block) is shown in parts, each
with a plain explanation; see :mod:`personae.writing.style_report` for its score.
"""

from __future__ import annotations

import unicodedata

import regex

from personae.personas.schema import PersonaDefinition
from personae.personas.writing_block import WritingBlock
from personae.writing.counting import count
from personae.writing.fingerprint import DraftMeasures, measure_draft
from personae.writing.platforms import Limit, PlatformSpec
from personae.writing.reports import Meter, StyleReport, ValidationReport, Violation
from personae.writing.style_report import not_comparable, style_report

# A hashtag: "#" not inside a word or URL fragment, then letters, digits or "_".
HASHTAG = regex.compile(r"(?<![\w&/#])#(\w*[\p{L}_]\w*)")
WORD = regex.compile(r"\w+(?:['\u2019]\w+)*")
LANGUAGE_PROBABILITY = 0.8  # below this the detector is not sure enough to object
LANGUAGE_MIN_WORDS = 8  # shorter drafts are too short to judge
NO_SAMPLES = ("This persona has no writing samples, so only the platform's rules were "
              "checked; add samples for a style report.")


def hashtags_in(text: str) -> list[str]:
    return [f"#{tag}" for tag in HASHTAG.findall(text)]


def _limit_check(name: str, text: str, limit: Limit, platform: str,
                 ) -> tuple[list[Meter], list[Violation]]:
    used = count(text, limit.counting, url_length=limit.url_length)
    meters = [Meter(name=name, used=used, limit=limit.max, counting=limit.counting)]
    violations = []
    if used > limit.max:
        violations.append(Violation(
            code="too_long", limit=limit.max, actual=used,
            message=f"The {name} is {used} {_unit(limit)} long; {platform} allows "
                    f"{limit.max} ({used - limit.max} too many)."))
    if limit.shown_before_more is not None:
        meters.append(Meter(name="see_more", used=used, limit=limit.shown_before_more,
                            counting=limit.counting, hard=False))
    return meters, violations


def _unit(limit: Limit) -> str:
    unit = {"graphemes": "characters (graphemes)", "utf16": "UTF-16 units",
            "weighted": "weighted characters"}.get(limit.counting, "characters")
    return unit + (f", each link counting {limit.url_length}" if limit.url_length else "")


def _limits(text: str, spec: PlatformSpec, title: str | None,
            ) -> tuple[list[Meter], list[Violation], list[str]]:
    meters, violations = _limit_check(spec.text_limit.field, text, spec.text_limit, spec.name)
    warnings = []
    if title is not None:
        title_limit = spec.limit_for("title")
        if title_limit is None:
            warnings.append(f"{spec.name} posts have no title; the title was not checked.")
        else:
            more_meters, more = _limit_check("title", title, title_limit, spec.name)
            meters, violations = meters + more_meters, violations + more
    return meters, violations, warnings


def _hashtags(text: str, spec: PlatformSpec) -> tuple[list[Meter], list[Violation]]:
    tags = hashtags_in(text)
    rules = spec.hashtags
    if rules.max is not None:
        meter = Meter(name="hashtags", used=len(tags), limit=rules.max, counting="hashtags")
        if len(tags) > rules.max:
            return [meter], [Violation(
                code="too_many_hashtags", limit=rules.max, actual=len(tags), words=tags,
                message=f"{len(tags)} hashtags; {spec.name} allows at most {rules.max}.")]
        return [meter], []
    if rules.recommended is not None:
        return [Meter(name="hashtags", used=len(tags), limit=rules.recommended,
                      counting="hashtags", hard=False)], []
    return [], []


def _banned(text: str, banned: list[str]) -> list[Violation]:
    """Banned words and phrases found whole (casefolded), in the order they were listed."""
    if not banned:
        return []
    words = [w.casefold() for w in WORD.findall(unicodedata.normalize("NFC", text))]
    joined = f" {' '.join(words)} "
    found = []
    for entry in banned:
        phrase = " ".join(w.casefold() for w in WORD.findall(entry))
        if phrase and f" {phrase} " in joined and entry not in found:
            found.append(entry)
    if not found:
        return []
    return [Violation(code="banned_word", words=found, actual=len(found),
                      message="The draft uses words this person never wants in a post: "
                              + ", ".join(found) + ".")]


def _language(measures: DraftMeasures, expected: str) -> list[Violation]:
    primary = expected.split("-")[0].lower()
    if (measures.word_count < LANGUAGE_MIN_WORDS or measures.language == "und"
            or measures.language.split("-")[0].lower() == primary
            or measures.language_probability < LANGUAGE_PROBABILITY):
        return []
    return [Violation(code="wrong_language", words=[measures.language],
                      message=f"The draft reads as {measures.language!r} "
                              f"(probability {measures.language_probability:.2f}); this "
                              f"persona writes in {expected!r}.")]


def _other_language(measures: DraftMeasures, expected: str) -> bool:
    """The draft is confidently in another language than the persona's (the rule of
    ``wrong_language``, without its minimum length): its style is not comparable."""
    found = measures.language.split("-")[0].lower()
    return (measures.word_count > 0 and found != "und"
            and found != expected.split("-")[0].lower()
            and measures.language_probability >= LANGUAGE_PROBABILITY)


def _style(text: str, measures: DraftMeasures, writing: WritingBlock, language: str
           ) -> StyleReport:
    if _other_language(measures, language):
        return not_comparable(measures, writing.fingerprint,
                              draft_language=measures.language, language=language)
    return style_report(text, measures, writing.fingerprint, language=language)


def validate(text: str, spec: PlatformSpec, *, persona_id: str, version: int,
             definition: PersonaDefinition, title: str | None = None) -> ValidationReport:
    """The draft's hard violations, meters and (with samples) style report."""
    meters, violations, warnings = _limits(text, spec, title)
    tag_meters, tag_violations = _hashtags(text, spec)
    writing = definition.writing
    banned = writing.onboarding.banned_words if writing is not None else []
    measures = measure_draft(text, language=definition.language)
    violations += tag_violations + _banned(text, banned) + _language(measures,
                                                                     definition.language)
    style = None
    if writing is None:
        warnings.append(NO_SAMPLES)
    else:
        style = _style(text, measures, writing, definition.language)
        if writing.fingerprint.confidence.level == "low":
            warnings.append(writing.fingerprint.confidence.note)
    return ValidationReport(
        platform=spec.id, persona_id=persona_id, persona_version=version,
        meets_limits=not violations, violations=violations, meters=meters + tag_meters,
        language=measures.language if measures.word_count else None,
        style=style, warnings=warnings)
