"""The messages the model gets: synthesis of a voice, rewriting a draft, a new post.

Every prompt is sized for a small local model: the synthesis prompt (facts,
onboarding, excerpts) stays within :data:`SYNTHESIS_PROMPT_TOKENS` (estimated at
about four characters a token), leaving :data:`SYNTHESIS_ANSWER_TOKENS` of a
2,048-token context for the answer. Excerpts are whole sentences, taken a sentence
at a time from each sample in turn, so every sample is heard and quotes spanning
adjacent sentences stay verbatim.

The writing prompts put the platform adaptation's ``instructions`` (the persona on
this platform, in plain words) in the system message and ask for the post text only.
"""

from __future__ import annotations

from collections.abc import Sequence

from personae.personas.writing_block import TONES, Fingerprint, Onboarding
from personae.providers.base import CHARS_PER_TOKEN, ChatMessage
from personae.writing.reports import ValidationReport
from personae.writing.text import sentences

CONTEXT_TOKENS = 2048
SYNTHESIS_ANSWER_TOKENS = 900
SYNTHESIS_PROMPT_TOKENS = CONTEXT_TOKENS - SYNTHESIS_ANSWER_TOKENS - 48  # template slack
MIN_EXCERPT_CHARS = 400  # excerpts get at least this much, whatever the facts take
MAX_SENTENCE_CHARS = 300  # longer sentences are skipped: they crowd out the others
FIELD_CHARS = 300  # one onboarding field, as shown to the model
MAX_FIXES = 8
EXCERPT_LABEL_CHARS = 8  # "[12] " and the line break before an excerpt

SYNTHESIS_SYSTEM = (
    "You describe how one person writes, for a ghost-writer who must sound like them. "
    "Use only the measured facts and the excerpts you are given; invent nothing. "
    "Answer with one JSON object:\n"
    '- "identity": who this writer is and how they come across (text), with 1-3 '
    "evidence quotes.\n"
    '- "tones": the default tone, the tones they also use (permitted) and the tones '
    "they never use (forbidden), each one of: " + ", ".join(TONES)
    + "; with 1-3 evidence quotes.\n"
    '- "constraints": up to 4 rules, each "always" or "never" with its text (for '
    "example never: exclamation marks), with 1-3 evidence quotes.\n"
    "Every evidence quote is at least three words copied exactly, letter for letter, "
    "from one excerpt. A claim without an exact quote is thrown away."
)


def synthesis_messages(fingerprint: Fingerprint, onboarding: Onboarding,
                       samples: Sequence[str], *, refused: str | None = None
                       ) -> list[ChatMessage]:
    """The synthesis request; ``refused`` is why the previous answer was refused."""
    facts = "\n".join(fingerprint_facts(fingerprint))
    person = "\n".join(onboarding_facts(onboarding)) or "(nothing given)"
    retry = (f"\n\nYour previous answer was refused: {refused}. Answer again."
             if refused else "")
    head = f"Measured facts:\n{facts}\n\nWhat the person told us:\n{person}\n\nExcerpts:\n"
    used = len(SYNTHESIS_SYSTEM) + len(head) + len(retry)
    budget = max(MIN_EXCERPT_CHARS, SYNTHESIS_PROMPT_TOKENS * CHARS_PER_TOKEN - used)
    excerpts = "\n".join(f"[{n}] {text}" for n, text in
                         enumerate(select_excerpts(samples, budget), start=1))
    return [ChatMessage("system", SYNTHESIS_SYSTEM),
            ChatMessage("user", head + excerpts + retry)]


def select_excerpts(samples: Sequence[str], budget_chars: int) -> list[str]:
    """Whole sentences, one per sample per round, until ``budget_chars`` is spent;
    one excerpt per sample that contributed, its sentences in their order."""
    queues = [[s for s in sentences(sample) if 0 < len(s.strip()) <= MAX_SENTENCE_CHARS]
              for sample in samples]
    taken: list[list[str]] = [[] for _ in queues]
    spent, progress = 0, True
    while progress:
        progress = False
        for index, queue in enumerate(queues):
            if len(taken[index]) >= len(queue):
                continue
            sentence = " ".join(queue[len(taken[index])].split())
            cost = len(sentence) + 1 + (0 if taken[index] else EXCERPT_LABEL_CHARS)
            if spent + cost > budget_chars:
                return _joined(taken)
            taken[index].append(sentence)
            spent += cost
            progress = True
    return _joined(taken)


def _joined(taken: list[list[str]]) -> list[str]:
    return [" ".join(parts) for parts in taken if parts]


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
    fixes = [violation.message for violation in report.violations]
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


def _clipped(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= FIELD_CHARS else value[:FIELD_CHARS - 3] + "..."
