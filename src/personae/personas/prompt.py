"""Build a persona's system prompt from its definition.

The prompt is a pure function of the definition: the same definition always gives
the same bytes, so prompts can be cached, diffed and hashed. Trait blocks are
rendered generically (a new ``pricing_model`` or ``availability`` block shows up
with no code change). Knowledge items are left out on purpose: they are retrieved
per message, not pasted into every prompt.

A definition may carry its own ``prompt_template`` (Jinja2), run in the sandbox of
:mod:`personae.personas.template`. A ``system_prompt`` holding ``{{original}}`` (as
Character Cards write it) composes with the default prompt instead of being one of its
sections. Macros (``{{char}}``, ``{{user}}``) are left for the caller to substitute
(see :mod:`personae.personas.macros`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from personae.personas.language import language_name
from personae.personas.macros import has_original, substitute
from personae.personas.schema import LanguagePolicy, PersonaDefinition
from personae.personas.template import DEFAULT_LIMITS, TemplateLimits, render_template
from personae.personas.writing_block import WritingBlock

_INDENT = "  "
_ARTICLES = ("a ", "an ", "the ")
# Vowel-initial words that still take "a" ("a European", "a unique", "a one-off").
_A_BEFORE_VOWEL = re.compile(r"(?i)^(eu|uni|use|usu|uti|one\b|once\b)")


# --------------------------------------------------------------------------- traits


def _label(key: Any) -> str:
    """``consultation_style`` -> ``Consultation style``; the rest of the case is kept."""
    text = " ".join(str(key).replace("_", " ").split())
    return text[:1].upper() + text[1:]


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list | tuple)


def _scalar(value: Any) -> str:
    """Plain text for one value: no quotes, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    return str(value).strip()


def _prefixed(prefix: str, text: str, depth: int) -> list[str]:
    """Put ``text`` after ``prefix``, indenting continuation lines under it."""
    first, *rest = text.splitlines() or [""]
    pad = _INDENT * (depth + 1)
    return [prefix + first, *(pad + line if line.strip() else "" for line in rest)]


def _pair(prefix: str, key: Any, value: Any, depth: int) -> list[str]:
    """``Key: value``, or ``Key:`` followed by the nested block; nothing if empty."""
    if _is_scalar(value):
        text = _scalar(value)
        return _prefixed(f"{prefix}{_label(key)}: ", text, depth) if text else []
    nested = _block(value, depth + 1)
    return [f"{prefix}{_label(key)}:", *nested] if nested else []


def _mapping_lines(mapping: Mapping[Any, Any], depth: int) -> list[str]:
    pad = _INDENT * depth
    lines: list[str] = []
    for key, value in mapping.items():
        lines.extend(_pair(f"{pad}- ", key, value, depth))
    return lines


def _list_item(item: Any, depth: int) -> list[str]:
    """One list element; a mapping element reads like YAML (first key on the bullet)."""
    pad = _INDENT * depth
    if _is_scalar(item):
        text = _scalar(item)
        return _prefixed(f"{pad}- ", text, depth) if text else []
    if not isinstance(item, Mapping):
        return _block(item, depth + 1)
    lines: list[str] = []
    for key, value in item.items():
        lines.extend(_pair(f"{pad}  " if lines else f"{pad}- ", key, value, depth + 1))
    return lines


def _block(value: Any, depth: int) -> list[str]:
    if isinstance(value, Mapping):
        return _mapping_lines(value, depth)
    if isinstance(value, list | tuple):
        return [line for item in value for line in _list_item(item, depth)]
    text = _scalar(value)
    return [_INDENT * depth + text] if text else []


def render_trait(name: str, value: Any) -> str:
    """One trait block: a ``## Heading`` and its body, or ``""`` when it says nothing.

    Text becomes a paragraph, lists become bullets and mappings ``- Key: value``
    lines, nested to any depth, so any JSON-shaped trait renders without code.
    """
    body = _scalar(value) if _is_scalar(value) else "\n".join(_block(value, 0))
    return f"## {_label(name)}\n{body}" if body else ""


# ------------------------------------------------------------------------- sections


def _with_article(phrase: str) -> str:
    if phrase.lower().startswith(_ARTICLES):
        return phrase
    vowel = phrase[:1].lower() in "aeiou" and not _A_BEFORE_VOWEL.match(phrase)
    return f"{'an' if vowel else 'a'} {phrase}"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _identity(definition: PersonaDefinition) -> str:
    """``You are Tina Kulkarni, a Vedic Marriage astrologer.`` with whatever is known."""
    role = (definition.role or "").strip()
    speciality = (definition.speciality or "").strip()
    name = definition.shown_name
    if role and speciality:
        if role.lower().startswith(_ARTICLES):
            return _sentence(f"You are {name}, {role}, specialising in {speciality}")
        return _sentence(f"You are {name}, {_with_article(f'{speciality} {role}')}")
    if role:
        return _sentence(f"You are {name}, {_with_article(role)}")
    if speciality:
        return _sentence(f"You are {name}, a specialist in {speciality}")
    return f"You are {name}."


def _language(definition: PersonaDefinition) -> str:
    name = language_name(definition.language)
    if definition.language_policy is LanguagePolicy.strict:
        text = f"Always answer in {name}, whatever language the user writes in."
    elif definition.language_policy is LanguagePolicy.prefer:
        text = f"Answer in {name} unless the user asks for another language."
    else:
        text = "Answer in the language the user writes in."
    return f"## Language\n{text}"


def _examples(definition: PersonaDefinition) -> str:
    if not definition.example_dialogues:
        return ""
    pairs = [
        f"User: {exchange.user}\n{definition.shown_name}: {exchange.reply}"
        for exchange in definition.example_dialogues
    ]
    return "## Example exchanges\n" + "\n\n".join(pairs)


# Punctuation habits worth telling a model, as words; rates are per 1,000 words.
_HABITS = {"em_dash": "em dashes", "ellipsis": "ellipses", "exclamation": "exclamation marks",
           "semicolon": "semicolons", "parenthesis": "parentheses", "emoji": "emoji",
           "hashtag": "hashtags", "list_item": "lists", "line_break": "line breaks"}
_OFTEN_PER_1000 = 8.0  # at least this often (per 1,000 words) reads as a habit
_NEVER_MIN_WORDS = 500  # "never" only means something over this many words of samples


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _tone_line(block: WritingBlock) -> str:
    tones = block.synthesis.tones
    if tones is None:
        return ""
    parts = [f"default {tones.default}"]
    if tones.permitted:
        parts.append("may also be " + ", ".join(tones.permitted))
    if tones.forbidden:
        parts.append("never " + ", ".join(tones.forbidden))
    return "Tone: " + "; ".join(parts) + "."


def _punctuation_habits(block: WritingBlock) -> list[str]:
    rates = block.fingerprint.punctuation
    often = [f"{name} ({_number(rates[key])} per 1,000 words)" for key, name in _HABITS.items()
             if rates.get(key, 0.0) >= _OFTEN_PER_1000]
    never = [name for key, name in _HABITS.items()
             if key in rates and rates[key] == 0 and key not in ("line_break", "list_item")]
    lines = [f"- Often uses {', '.join(often)}." if often else ""]
    if never and block.fingerprint.word_count >= _NEVER_MIN_WORDS:
        lines.append(f"- Never uses {', '.join(never)}.")
    return [line for line in lines if line]


def _habit_lines(block: WritingBlock) -> list[str]:
    """The measured habits a model can act on (never the numeric style profile)."""
    fingerprint = block.fingerprint
    lines = []
    if fingerprint.sentences.count:
        lines.append(f"- Sentences: typically {_number(fingerprint.sentences.median_words)} "
                     "words (median).")
    if fingerprint.go_to_words:
        lines.append("- Go-to words: " + ", ".join(m.text for m in fingerprint.go_to_words) + ".")
    if fingerprint.go_to_phrases:
        lines.append("- Go-to phrases: " + ", ".join(
            f'"{m.text}"' for m in fingerprint.go_to_phrases) + ".")
    if fingerprint.avoided_words:
        lines.append("- Words they never use: " + ", ".join(fingerprint.avoided_words) + ".")
    lines.extend(_punctuation_habits(block))
    if fingerprint.hashtags_per_sample or fingerprint.emoji_per_sample:
        lines.append(f"- Per post: about {_number(fingerprint.hashtags_per_sample)} hashtags "
                     f"and {_number(fingerprint.emoji_per_sample)} emoji.")
    return lines


def _writing(definition: PersonaDefinition) -> str:
    """The "Writing voice" section: who writes, tones, constraints, measured habits."""
    block = definition.writing
    if block is None:
        return ""
    synthesis = block.synthesis
    identity = synthesis.identity.text if synthesis.identity and synthesis.status == "ok" else ""
    constraints = [f"- {claim.text}" for claim in synthesis.constraints] \
        if synthesis.status == "ok" else []
    banned = block.onboarding.banned_words
    parts = [identity, _tone_line(block) if synthesis.status == "ok" else "",
             "Constraints:\n" + "\n".join(constraints) if constraints else "",
             "Never write these words: " + ", ".join(banned) + "." if banned else ""]
    habits = _habit_lines(block)
    if habits:
        parts.append("Measured in their own writing:\n" + "\n".join(habits))
    return "## Writing voice\n" + "\n\n".join(part for part in parts if part)


def _trait_blocks(definition: PersonaDefinition) -> dict[str, str]:
    blocks = {name: render_trait(name, value) for name, value in definition.traits.items()}
    return {name: block for name, block in blocks.items() if block}


def _sections(definition: PersonaDefinition) -> dict[str, str]:
    """Every default section in prompt order; empty ones are kept as ``""`` (a persona
    without a writing block has no ``writing`` key, so its prompt is unchanged)."""
    keywords = ", ".join(definition.expertise_keywords)
    sections = {
        "identity": _identity(definition),
        "description": definition.description.strip(),
        "instructions": definition.system_prompt.strip(),
        "expertise": f"## Expertise\n{keywords}" if keywords else "",
        "traits": "\n\n".join(_trait_blocks(definition).values()),
        "language": _language(definition),
        "examples": _examples(definition),
    }
    if definition.writing is None:
        return sections
    ordered = list(sections.items())
    ordered.insert(len(ordered) - 2, ("writing", _writing(definition)))  # before language
    return dict(ordered)


def _tidy(text: str) -> str:
    """Trailing spaces off every line, no leading or trailing blank lines."""
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def _default_prompt(sections: Mapping[str, str]) -> str:
    return _tidy("\n\n".join(text for text in sections.values() if text.strip()))


def _render_template(definition: PersonaDefinition, sections: dict[str, str],
                     limits: TemplateLimits) -> str:
    persona = definition.model_dump(mode="json")
    persona["shown_name"] = definition.shown_name
    context = {"persona": persona, "sections": sections, "traits": _trait_blocks(definition),
               "default": _default_prompt(sections)}
    return _tidy(render_template(definition.prompt_template or "", context, limits))


# --------------------------------------------------------------------------- public


def build_system_prompt(definition: PersonaDefinition,
                        limits: TemplateLimits = DEFAULT_LIMITS) -> str:
    """The persona's system prompt: its own template if it has one, else the default.

    Raises ValueError when the persona's template cannot be compiled or rendered, or
    breaks one of ``limits`` (time, output size) or the sandbox's size bounds.
    """
    sections = _sections(definition)
    if definition.prompt_template:
        return _render_template(definition, sections, limits)
    if has_original(definition.system_prompt):
        return _composed(definition.system_prompt, sections)
    return _default_prompt(sections)


def _composed(system_prompt: str, sections: Mapping[str, str]) -> str:
    """A card's ``system_prompt`` with ``{{original}}``: the prompt is that text, with
    ``{{original}}`` standing for the default prompt built from the other sections."""
    default = _default_prompt({**sections, "instructions": ""})
    return _tidy(substitute(system_prompt.strip(), original=default))
