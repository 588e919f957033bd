"""How much text a persona definition may hold, checked whenever one is written.

A Character Card with a 10 MB description was once accepted (uploads may be 16 MiB);
every page showing the persona then weighed 63 MB and every chat with it failed, no
model having a context that large. So each free-text field has a maximum length and
the whole definition a maximum size, refused with a 422 that names the field and its
bound. Real cards stay well inside them: long descriptions run to a few thousand, at
most tens of thousands, of characters; 128,000 characters is about 32,000 tokens,
more than most models' whole context.

The bounds are not part of the schema: a stored version is validated again on every
read, and a persona stored before they existed must stay readable, exportable and
archivable. They apply where text is written (create, update, import, sync, rollback;
see :func:`~personae.personas.validation.parse_persona`), and a persona over them is
told so when its text is next written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from personae.errors import FieldIssue, ValidationFailed
from personae.personas.schema import PersonaDefinition

MAX_TEXT_CHARS = 128_000  # a prose field: description, system prompt, a greeting, ...
MAX_LABEL_CHARS = 200  # a short one: name, display name, role, a tag, ...
MAX_DEFINITION_CHARS = 4_000_000  # the whole definition, as the compact JSON stored
TEXT_FIELDS = ("description", "system_prompt", "post_history_instructions")
LABEL_FIELDS = ("name", "display_name", "role", "speciality", "gender")
LABEL_LISTS = ("tags", "expertise_keywords")


def bound_issues(definition: PersonaDefinition) -> list[FieldIssue]:
    """Every field over its bound; when none is, the whole definition's size."""
    issues = [FieldIssue(path, f"{size:,} characters; at most {limit:,} are accepted")
              for path, size, limit in _sizes(definition) if size > limit]
    return issues or _total_issues(definition)


def check_bounds(definition: PersonaDefinition) -> PersonaDefinition:
    """``definition`` itself, or :class:`ValidationFailed` naming each field past its
    bound (for a definition written without passing ``parse_persona``: a rollback)."""
    issues = bound_issues(definition)
    if issues:
        raise ValidationFailed(issues)
    return definition


def _sizes(definition: PersonaDefinition) -> Iterator[tuple[str, int, int]]:
    """``(path, characters, bound)`` for each bounded piece of text."""
    for name in LABEL_FIELDS:
        yield name, len(getattr(definition, name) or ""), MAX_LABEL_CHARS
    for name in LABEL_LISTS:
        for index, label in enumerate(getattr(definition, name)):
            yield f"{name}[{index}]", len(label), MAX_LABEL_CHARS
    for name in TEXT_FIELDS:
        yield name, len(getattr(definition, name)), MAX_TEXT_CHARS
    for index, greeting in enumerate(definition.greetings):
        yield f"greetings[{index}]", len(greeting), MAX_TEXT_CHARS
    for index, example in enumerate(definition.example_dialogues):
        yield f"example_dialogues[{index}].user", len(example.user), MAX_TEXT_CHARS
        yield f"example_dialogues[{index}].reply", len(example.reply), MAX_TEXT_CHARS
    for index, item in enumerate(definition.knowledge):
        yield f"knowledge[{index}].content", len(item.content), MAX_TEXT_CHARS
    for name, block in definition.traits.items():
        yield f"traits.{name}", text_size(block, MAX_TEXT_CHARS), MAX_TEXT_CHARS


def text_size(value: Any, limit: int) -> int:
    """The characters of a trait block's text (its strings and keys, at any depth),
    counted without recursion and only until past ``limit``."""
    total, pending = 0, [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += sum(len(str(key)) for key in item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif item is not None:
            total += len(str(item))
    return total


def _total_issues(definition: PersonaDefinition) -> list[FieldIssue]:
    data = definition.to_data()
    size = _json_size(data)
    if size <= MAX_DEFINITION_CHARS:
        return []
    largest, largest_size = max(((key, _json_size(value)) for key, value in data.items()),
                                key=lambda pair: pair[1])
    return [FieldIssue(largest, f"the definition is {size:,} characters as JSON, at most "
                                f"{MAX_DEFINITION_CHARS:,} characters are accepted; this is "
                                f"the largest field ({largest_size:,})")]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
