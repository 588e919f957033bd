"""A persona's measured voice under one platform's rules, and the brief a model gets.

Deterministic: the same definition and spec give the same adaptation. The person's
habits (post length, sentence length, hashtags, emoji, line breaks) become targets
clamped to what the platform allows or expects; their tones are adjusted by the
platform's preferences, and a tone the person never takes stays forbidden whatever
the platform prefers. A persona without a writing block gets the platform's rules
alone, and the adaptation says so.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from personae.personas.schema import PersonaDefinition
from personae.personas.writing_block import Fingerprint, Tone, WritingBlock
from personae.writing.platforms import Limit, PlatformSpec

# Characters per word, space included, by how a platform counts: a guide for turning
# a character limit into a word target (CJK words are ~2 characters, each weighing 2).
_CHARS_PER_WORD = {"latin": 6.0, "cjk": 2.0}
_CJK = ("zh", "ja", "ko")
_ROOM = 0.85  # leave room for links, hashtags and a margin of error
DEFAULT_SENTENCE_WORDS = 15.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Targets(_Model):
    words: int = Field(ge=1)  # a post's length to aim at
    max_words: int = Field(ge=1)  # about what fits in the limit
    sentence_words: float = Field(ge=0)
    hashtags: int = Field(ge=0)
    emoji: int = Field(ge=0)
    line_breaks: int = Field(ge=0)  # per post


class AdaptedTone(_Model):
    default: Tone | None
    permitted: list[Tone] = Field(default_factory=list)
    forbidden: list[Tone] = Field(default_factory=list)
    adjustments: list[str] = Field(default_factory=list)


class PlatformAdaptation(_Model):
    platform: str
    persona_id: str
    persona_version: int
    from_samples: bool  # False: no writing block, the platform's rules only
    limits: list[Limit]
    targets: Targets
    tone: AdaptedTone
    conventions: list[str]
    instructions: str


def _max_words(limit: Limit, language: str) -> int:
    script = "cjk" if language.split("-")[0].lower() in _CJK else "latin"
    per_word = _CHARS_PER_WORD[script] * (2 if limit.counting == "weighted" and script == "cjk"
                                          else 1)
    return max(1, int(limit.max * _ROOM / per_word))


def _targets(spec: PlatformSpec, fingerprint: Fingerprint | None, language: str) -> Targets:
    max_words = _max_words(spec.text_limit, language)
    tag_cap = spec.hashtags.max
    emoji_cap = spec.emoji.max_recommended
    if fingerprint is None:
        return Targets(words=min(spec.typical_words, max_words), max_words=max_words,
                       sentence_words=DEFAULT_SENTENCE_WORDS,
                       hashtags=spec.hashtags.recommended or 0, emoji=0, line_breaks=0)
    words = min(max(1, round(fingerprint.words_per_sample)), max_words)
    hashtags = round(fingerprint.hashtags_per_sample)
    emoji = round(fingerprint.emoji_per_sample)
    line_breaks = round(fingerprint.punctuation.get("line_break", 0.0) * words / 1000)
    return Targets(words=words, max_words=max_words,
                   sentence_words=round(fingerprint.sentences.median_words
                                        or DEFAULT_SENTENCE_WORDS, 1),
                   hashtags=hashtags if tag_cap is None else min(hashtags, tag_cap),
                   emoji=emoji if emoji_cap is None else min(emoji, emoji_cap),
                   line_breaks=line_breaks)


def _tone(spec: PlatformSpec, writing: WritingBlock | None) -> AdaptedTone:
    rules = spec.tone
    tones = writing.synthesis.tones if writing is not None else None
    adjustments = list(rules.adjustments)
    if tones is None:
        if rules.prefer:
            adjustments.append(f"{spec.name} favours a {', '.join(rules.prefer)} tone.")
        return AdaptedTone(default=None, permitted=list(rules.prefer),
                           forbidden=list(rules.avoid), adjustments=adjustments)
    forbidden = list(dict.fromkeys([*tones.forbidden]))
    own = [t for t in dict.fromkeys([tones.default, *tones.permitted]) if t not in forbidden]
    permitted = [t for t in own if t not in rules.avoid]
    default = tones.default
    if default in rules.avoid:
        preferred = [t for t in permitted if t in rules.prefer] or permitted
        if preferred:
            adjustments.append(f"Your usual {default} tone is toned down on {spec.name}; "
                               f"lead with {preferred[0]}.")
            default = preferred[0]
    lean = [t for t in permitted if t in rules.prefer and t != default]
    if lean:
        adjustments.append(f"On {spec.name}, lean on your {', '.join(lean)} side.")
    return AdaptedTone(default=default, permitted=[t for t in permitted if t != default],
                       forbidden=forbidden, adjustments=adjustments)


def _conventions(spec: PlatformSpec) -> list[str]:
    found = []
    if spec.hashtags.placement:
        found.append(f"Hashtags: {spec.hashtags.placement}.")
    found += spec.hashtags.advice + spec.mentions.advice + spec.emoji.advice + spec.links.advice
    found += [line for line in (spec.format.paragraphs, spec.format.line_breaks,
                                spec.format.lists) if line]
    return found


def _limit_lines(spec: PlatformSpec) -> list[str]:
    lines = []
    for limit in spec.limits:
        if limit.field == "comment":
            continue
        how = {"weighted": "weighted characters (CJK and emoji count 2)",
               "graphemes": "characters as displayed (graphemes)"}.get(limit.counting,
                                                                        "characters")
        link = f"; every link counts {limit.url_length}" if limit.url_length else ""
        fold = (f"; the first {limit.shown_before_more} show before \"see more\""
                if limit.shown_before_more else "")
        lines.append(f"- The {limit.field}: at most {limit.max} {how}{link}{fold}.")
    if spec.hashtags.max is not None:
        lines.append(f"- At most {spec.hashtags.max} hashtags.")
    return lines


def _habit_lines(targets: Targets, writing: WritingBlock | None) -> list[str]:
    if writing is None:
        return ["- This persona has no writing samples: follow the platform's norms; "
                f"aim at about {targets.words} words."]
    lines = [f"- About {targets.words} words (at most about {targets.max_words}); "
             f"sentences of about {targets.sentence_words:.0f} words.",
             f"- {targets.hashtags} hashtags, {targets.emoji} emoji, "
             f"{targets.line_breaks} line breaks."]
    fingerprint = writing.fingerprint
    if fingerprint.go_to_words:
        lines.append("- Words they reach for: "
                     + ", ".join(m.text for m in fingerprint.go_to_words[:8]) + ".")
    if writing.synthesis.identity is not None:
        lines.append(f"- Who they are: {writing.synthesis.identity.text}")
    lines += [f"- {claim.text}" for claim in writing.synthesis.constraints[:6]]
    return lines


def _never_lines(tone: AdaptedTone, writing: WritingBlock | None) -> list[str]:
    lines = []
    if tone.forbidden:
        lines.append(f"- Never sound {', '.join(tone.forbidden)}.")
    if writing is not None and writing.onboarding.banned_words:
        lines.append("- Never use: " + ", ".join(writing.onboarding.banned_words) + ".")
    if writing is not None and writing.fingerprint.avoided_words:
        lines.append("- Words they never use: "
                     + ", ".join(writing.fingerprint.avoided_words[:10]) + ".")
    return lines


def _instructions(spec: PlatformSpec, definition: PersonaDefinition, targets: Targets,
                  tone: AdaptedTone, conventions: list[str]) -> str:
    writing = definition.writing
    who = (writing.onboarding.name if writing is not None and writing.onboarding.name
           else definition.name)
    tone_line = (f"- Tone: {tone.default}" + (f"; also {', '.join(tone.permitted)}"
                                               if tone.permitted else "") + "."
                 if tone.default else
                 (f"- Tone: {', '.join(tone.permitted)}." if tone.permitted else ""))
    sections = [f"Write a {spec.name} post as {who}, in {definition.language}.",
                "Limits:", *_limit_lines(spec),
                "Their habits:", *_habit_lines(targets, writing),
                *([tone_line] if tone_line else []), *[f"- {a}" for a in tone.adjustments],
                f"{spec.name} conventions:", *[f"- {c}" for c in conventions[:6]]]
    never = _never_lines(tone, writing)
    if never:
        sections += ["Never:", *never]
    return "\n".join(sections)


def adapt(spec: PlatformSpec, *, persona_id: str, version: int,
          definition: PersonaDefinition) -> PlatformAdaptation:
    """The persona's fingerprint under ``spec``'s rules, with the model's brief."""
    writing = definition.writing
    fingerprint = writing.fingerprint if writing is not None else None
    targets = _targets(spec, fingerprint, definition.language)
    tone = _tone(spec, writing)
    conventions = _conventions(spec)
    return PlatformAdaptation(
        platform=spec.id, persona_id=persona_id, persona_version=version,
        from_samples=writing is not None, limits=list(spec.limits), targets=targets,
        tone=tone, conventions=conventions,
        instructions=_instructions(spec, definition, targets, tone, conventions))
