"""The messages the model gets: synthesis of a voice, rewriting a draft, a new post.

Every prompt is sized for a small local model: the synthesis prompt (facts,
onboarding, excerpts) stays within :data:`SYNTHESIS_PROMPT_TOKENS` (estimated at
about four characters a token), leaving :data:`SYNTHESIS_ANSWER_TOKENS` of a
2,048-token context for the answer. Excerpts are whole sentences, taken a sentence
at a time from each sample in turn so every sample is heard, each shown with its id
(``[E1] ...``): the model cites evidence by id, since small models cannot copy a
quote letter for letter, and code maps each id back to the sentence it names.

The writing prompts put the platform adaptation's ``instructions`` (the persona on
this platform, in plain words) in the system message and ask for the post text only.
"""

from __future__ import annotations

from collections.abc import Sequence

from personae.personas.writing_block import TONES, Fingerprint, Onboarding
from personae.providers.base import CHARS_PER_TOKEN, ChatMessage
from personae.writing.evidence import long_enough, normalise
from personae.writing.reports import ValidationReport, Violation
from personae.writing.text import sentences

CONTEXT_TOKENS = 2048
SYNTHESIS_ANSWER_TOKENS = 700
SYNTHESIS_PROMPT_TOKENS = CONTEXT_TOKENS - SYNTHESIS_ANSWER_TOKENS - 48  # template slack
MIN_EXCERPT_CHARS = 400  # excerpts get at least this much, whatever the facts take
MAX_SENTENCE_CHARS = 300  # longer sentences are skipped: they crowd out the others
FIELD_CHARS = 300  # one onboarding field, as shown to the model
MAX_FIXES = 8
EXCERPT_LABEL_CHARS = 7  # "[E12] " and the line break after an excerpt
RETRY_NOTE_CHARS = 240  # room kept for "your previous answer was refused: ..."

SYNTHESIS_SYSTEM = (
    "You describe how one person writes, for a ghost-writer who must sound like them. "
    "Use only the measured facts and the numbered excerpts you are given; invent "
    "nothing. Answer with one JSON object:\n"
    '- "identity": who this writer is and how they come across, in one short '
    "sentence (text), with the ids of 1-3 excerpts that show it (evidence).\n"
    '- "tones": the default tone, the tones they also use (permitted) and the tones '
    "they never use (forbidden), each one of: " + ", ".join(TONES)
    + "; with the ids of 1-3 excerpts.\n"
    '- "constraints": up to 4 short rules, each "always" or "never" with its text '
    "(for example never: exclamation marks), with the ids of 1-3 excerpts.\n"
    'Evidence is a list of excerpt ids such as ["E2", "E5"]. Keep every text short.'
)


def excerpt_id(number: int) -> str:
    """The id the model cites for the ``number``-th excerpt (from 1)."""
    return f"E{number}"


def synthesis_excerpts(fingerprint: Fingerprint, onboarding: Onboarding,
                       samples: Sequence[str]) -> list[str]:
    """The sentences shown to the model, within the prompt budget (room is kept for a
    refusal note, so the same excerpts serve every attempt)."""
    used = (len(SYNTHESIS_SYSTEM) + len(_synthesis_head(fingerprint, onboarding))
            + RETRY_NOTE_CHARS)
    budget = max(MIN_EXCERPT_CHARS, SYNTHESIS_PROMPT_TOKENS * CHARS_PER_TOKEN - used)
    return select_excerpts(samples, budget)


def synthesis_messages(fingerprint: Fingerprint, onboarding: Onboarding,
                       excerpts: Sequence[str], *, refused: str | None = None
                       ) -> list[ChatMessage]:
    """The synthesis request over ``excerpts`` (numbered from E1); ``refused`` is why
    the previous answer was refused."""
    retry = (f"\n\nYour previous answer was refused: {refused}. Answer again."
             if refused else "")
    numbered = "\n".join(f"[{excerpt_id(n)}] {text}"
                         for n, text in enumerate(excerpts, start=1))
    return [ChatMessage("system", SYNTHESIS_SYSTEM),
            ChatMessage("user", _synthesis_head(fingerprint, onboarding) + numbered + retry)]


def _synthesis_head(fingerprint: Fingerprint, onboarding: Onboarding) -> str:
    facts = "\n".join(fingerprint_facts(fingerprint))
    person = "\n".join(onboarding_facts(onboarding)) or "(nothing given)"
    return f"Measured facts:\n{facts}\n\nWhat the person told us:\n{person}\n\nExcerpts:\n"


def select_excerpts(samples: Sequence[str], budget_chars: int) -> list[str]:
    """Whole sentences usable as evidence, one per sample per round, until
    ``budget_chars`` is spent; listed sample by sample, in their order, each once."""
    queues = [_usable_sentences(sample) for sample in samples]
    taken: list[list[str]] = [[] for _ in queues]
    spent, progress = 0, True
    while progress:
        progress = False
        for index, queue in enumerate(queues):
            if len(taken[index]) >= len(queue):
                continue
            sentence = queue[len(taken[index])]
            cost = len(sentence) + EXCERPT_LABEL_CHARS
            if spent + cost > budget_chars:
                return _listed(taken)
            taken[index].append(sentence)
            spent += cost
            progress = True
    return _listed(taken)


def _usable_sentences(sample: str) -> list[str]:
    """The sample's sentences that can stand as a quote: not too long, long enough."""
    found = (" ".join(s.split()) for s in sentences(sample))
    return [s for s in found if len(s) <= MAX_SENTENCE_CHARS and long_enough(normalise(s))]


def _listed(taken: list[list[str]]) -> list[str]:
    return list(dict.fromkeys(sentence for parts in taken for sentence in parts))


def fingerprint_facts(fingerprint: Fingerprint) -> list[str]:
    """The measurements as short readable lines."""
    s = fingerprint.sentences
    lines = [
        f"- {fingerprint.word_count} words in {fingerprint.sample_count} samples, "
        f"language {fingerprint.language}; confidence {fingerprint.confidence.level}: "
        f"{fingerprint.confidence.note}",
        f"- sentences: mean {s.mean_words:.1f} words, median {s.median_words:.0f}, "
        f"most between {s.p10_words:.0f} and {s.p90_words:.0f}; questions "
        f"{s.question:.0%}, exclamations {s.exclamation:.0%}, fragments {s.fragment:.0%}",
    ]
    if fingerprint.go_to_words:
        lines.append("- go-to words: " + ", ".join(m.text for m in fingerprint.go_to_words[:8]))
    if fingerprint.go_to_phrases:
        lines.append("- go-to phrases: "
                     + ", ".join(m.text for m in fingerprint.go_to_phrases[:6]))
    if fingerprint.avoided_words:
        lines.append("- never uses: " + ", ".join(fingerprint.avoided_words[:10]))
    habits = [f"{key.replace('_', ' ')} {value:.1f}"
              for key, value in fingerprint.punctuation.items() if value > 0]
    if habits:
        lines.append("- per 1,000 words: " + ", ".join(habits[:10]))
    lines.append(f"- contractions {fingerprint.contractions_per_1000:.1f} and first person "
                 f"{fingerprint.first_person_per_1000:.1f} per 1,000 words")
    if fingerprint.readability:
        lines.append("- readability: " + ", ".join(
            f"{name.replace('_', ' ')} {value:.1f}"
            for name, value in list(fingerprint.readability.items())[:3]))
    return lines


def onboarding_facts(onboarding: Onboarding) -> list[str]:
    fields = [("name", onboarding.name), ("audience", onboarding.audience),
              ("goals", "; ".join(onboarding.goals)), ("topics", ", ".join(onboarding.topics)),
              ("notes", onboarding.notes)]
    return [f"- {label}: {_clipped(value)}" for label, value in fields if value]


def optimise_messages(instructions: str, text: str, previous: ValidationReport | None
                      ) -> list[ChatMessage]:
    """Rewrite ``text`` in the persona's voice, fixing what ``previous`` found."""
    fixes = "\n".join(f"- {fix}" for fix in fixes_for(previous)) or "- none listed"
    system = (f"{instructions}\n\nRewrite the draft you are given in this person's voice "
              "for this platform, within its limits. Keep every fact of the draft and add "
              "none. Reply with the post text only: no title, no quotes around it, no "
              "comments.")
    return [ChatMessage("system", system),
            ChatMessage("user", f"Draft:\n{text}\n\nFix these:\n{fixes}")]


def draft_messages(instructions: str, topic: str, notes: str) -> list[ChatMessage]:
    """Write a new post on ``topic`` in the persona's voice."""
    system = (f"{instructions}\n\nWrite a new post in this person's voice for this "
              "platform, within its limits. Use only the facts in the topic and notes. "
              "Reply with the post text only: no title, no quotes around it, no comments.")
    user = f"Topic: {topic}" + (f"\nNotes: {notes}" if notes else "")
    return [ChatMessage("system", system), ChatMessage("user", user)]


def fixes_for(report: ValidationReport | None) -> list[str]:
    """What the previous attempt got wrong, as short instructions."""
    if report is None:
        return []
    fixes = [_fix(violation, report) for violation in report.violations]
    style = report.style
    if style is not None:
        if style.distance.verdict in ("near", "far"):
            fixes.append(style.distance.explanation)
        if style.sentence_length.notable:
            fixes.append(style.sentence_length.explanation)
        fixes.extend(d.explanation for d in style.punctuation if d.notable)
        if style.avoided_used:
            fixes.append("do not use: " + ", ".join(style.avoided_used[:10]))
    return fixes[:MAX_FIXES]


def _fix(violation: Violation, report: ValidationReport) -> str:
    """One broken hard rule as a concrete instruction: how much to cut, what to drop."""
    over = (violation.actual or 0) - (violation.limit or 0)
    if violation.code == "too_long" and over > 0:
        meter = next((m for m in report.meters if m.hard and m.used == violation.actual
                      and m.limit == violation.limit), None)
        name = meter.name if meter is not None else "text"
        return (f"the {name} is {violation.actual:,}/{violation.limit:,}: remove at least "
                f"{over:,} characters (shorten or drop a sentence; keep the facts)")
    if violation.code == "too_many_hashtags" and over > 0:
        dropped = violation.words[-over:]
        return (f"use at most {violation.limit} hashtags: drop " + ", ".join(dropped))
    if violation.code == "banned_word" and violation.words:
        return ("replace these words, which this person never uses: "
                + ", ".join(violation.words))
    return violation.message


def _clipped(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= FIELD_CHARS else value[:FIELD_CHARS - 3] + "..."
