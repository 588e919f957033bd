"""Turn loose persona input (a file, a request body) into a :class:`PersonaDefinition`.

Input may use the flat shape older persona systems wrote: a single ``greeting``,
``voice_id`` at the top, and new trait blocks (``consultation_style``, ...) added as
top-level keys. Such keys are moved into ``traits`` so they shape the prompt with no
code change; a key that looks like a misspelt field is rejected instead
(``sytem_prompt: unknown field; did you mean 'system_prompt'?``).
Every problem is reported with its field path, never as a traceback. A definition is
also checked as it will be used: trait and extension values may nest at most
``MAX_DEPTH`` levels, and a ``prompt_template`` is rendered once against the
definition under the template bounds, so one that fails or breaks a bound is refused
here (422) rather than when a conversation starts. Text fields and the whole
definition have maximum sizes (:mod:`~personae.personas.definition_bounds`), checked
here, where every write's input passes, and not when a stored version is read.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from personae.errors import FieldIssue, PermissionDenied, ValidationFailed
from personae.limits import MAX_DEPTH, nesting_depth
from personae.personas.definition_bounds import bound_issues
from personae.personas.prompt import build_system_prompt
from personae.personas.schema import (
    DEFINITION_FIELDS,
    ID_MAX_LENGTH,
    RESERVED_NAMES,
    PersonaDefinition,
    id_from_name,
    split_id,
)

# Accepted spellings from older persona formats -> the field they fill.
ALIASES: dict[str, str] = {
    "greeting": "greetings",
    "alternate_greetings": "greetings",
    "voice_id": "voice",
    "expertise": "expertise_keywords",
    "model_settings": "model",
    "persona": "description",
}

_FRIENDLY: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "int_parsing": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
}


def format_path(loc: tuple[int | str, ...]) -> str:
    """``("greetings", 0)`` -> ``greetings[0]``; ``("voice", "speed")`` -> ``voice.speed``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def describe(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "string_pattern_mismatch" and error["loc"][-1:] == ("id",):
        return ("must be a slug (lowercase letters, digits, '-' or '_', starting with a "
                "letter or digit), optionally after its owner's namespace, as in "
                f"'alice/tutor'; at most {ID_MAX_LENGTH} characters")
    if kind == "enum":
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in _FRIENDLY:
        return _FRIENDLY[kind]
    message = error["msg"]
    return message[:1].lower() + message[1:]


def issues_from(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[FieldIssue]:
    return [FieldIssue(format_path(prefix + tuple(e["loc"])), describe(e)) for e in exc.errors()]


def _apply_aliases(data: dict[str, Any], issues: list[FieldIssue]) -> None:
    for alias, field in (("expertise", "expertise_keywords"), ("model_settings", "model"),
                         ("persona", "description")):
        if alias in data and field in data:
            issues.append(FieldIssue(alias, f"given together with '{field}'; use '{field}' only"))
            del data[alias]
        elif alias in data:
            data[field] = data.pop(alias)
    if "greeting" in data or "alternate_greetings" in data or isinstance(
            data.get("greetings"), str):
        data["greetings"] = (_as_list(data.pop("greeting", None))
                             + _as_list(data.get("greetings"))
                             + _as_list(data.pop("alternate_greetings", None)))
    voice = data.get("voice")
    voice_id = data.pop("voice_id", None)
    if isinstance(voice, str):
        if voice_id is not None and voice_id != voice:
            issues.append(FieldIssue("voice_id", "given together with a different 'voice'"))
        data["voice"] = {"voice_id": voice}
    elif voice_id is not None:
        data["voice"] = {**(voice if isinstance(voice, Mapping) else {}), "voice_id": voice_id}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _move_unknown_to_traits(data: dict[str, Any], issues: list[FieldIssue]) -> None:
    traits = data.get("traits")
    if traits is None:
        traits = {}
    if not isinstance(traits, Mapping):
        return  # reported by the schema as "traits: must be a mapping"
    traits = dict(traits)
    known = DEFINITION_FIELDS | ALIASES.keys()
    for key in [k for k in data if k not in DEFINITION_FIELDS]:
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.85)
        if close:
            issues.append(FieldIssue(str(key), f"unknown field; did you mean '{close[0]}'?"))
        elif key in traits:
            issues.append(FieldIssue(str(key), "given both at the top level and in traits"))
        else:
            traits[key] = data[key]
        del data[key]
    data["traits"] = traits


def parse_persona(
    raw: Any, *, default_id: str | None = None, source: str | None = None,
    render: bool = True,
) -> PersonaDefinition:
    """Validate loose input into a definition, or raise :class:`ValidationFailed`.

    ``default_id`` fills a missing ``id`` (a file's stem); failing that, the id is
    made from the name (:func:`~personae.personas.schema.id_from_name`), and the
    definition remembers so, for :func:`in_namespace`. ``source`` prefixes the error
    message (a file path).
    ``render=False`` skips rendering the prompt template and the text bounds
    (:mod:`~personae.personas.definition_bounds`), for a definition that is only
    compared, never stored (a stored card, read back for an export).
    """
    if not isinstance(raw, Mapping):
        kind = type(raw).__name__
        raise ValidationFailed([FieldIssue("", f"a persona must be a mapping, got {kind}")], source)
    data = dict(raw)
    issues: list[FieldIssue] = []
    _apply_aliases(data, issues)
    _move_unknown_to_traits(data, issues)
    from_name = not data.get("id") and not default_id and bool(data.get("name"))
    if not data.get("id"):
        fallback = default_id or (id_from_name(str(data["name"])) if from_name else "")
        if fallback:
            data["id"] = fallback
    try:
        definition = PersonaDefinition.model_validate(data)
    except ValidationError as exc:
        issues.extend(issues_from(exc))
        definition = None
    if definition is not None and from_name:
        definition.mark_id_made_from_name()
    if definition is not None and (problem := reserved_name_problem(definition.id)):
        issues.append(FieldIssue("id", problem))
    if definition is not None and not issues:
        issues.extend(_usable_issues(definition, render))
    if issues or definition is None:
        raise ValidationFailed(issues, source)
    return definition


def _usable_issues(definition: PersonaDefinition, render: bool) -> list[FieldIssue]:
    """What would fail when the definition is used: deep values, text past its bound,
    a failing template (the last two only for a definition to be stored)."""
    issues = [FieldIssue(f"{field}.{key}", f"nested deeper than {MAX_DEPTH} levels")
              for field, values in (("traits", definition.traits),
                                    ("extensions", definition.extensions))
              for key, value in values.items() if nesting_depth(value) > MAX_DEPTH]
    if render and not issues:
        issues = bound_issues(definition)
    if render and definition.prompt_template and not issues:
        try:
            build_system_prompt(definition)
        except (ValueError, RecursionError) as exc:
            issues.append(FieldIssue("prompt_template", str(exc)))
    return issues


def reserved_name_problem(persona_id: str) -> str | None:
    """Why an id cannot be used because its name is a word of the API's URLs, if it is."""
    name = split_id(persona_id)[1]
    if name not in RESERVED_NAMES:
        return None
    return (f"'{name}' is a reserved word in persona URLs "
            f"({', '.join(sorted(RESERVED_NAMES))}); choose another name")


def in_namespace(definition: PersonaDefinition, namespace: str | None, *,
                 whose: str = "your own") -> PersonaDefinition:
    """The definition with its id in ``namespace`` (the owner's user name; None: global).

    A plain id is put in the namespace (``tutor`` -> ``alice/tutor``). One made from the
    persona's name is made again to fit when the namespace makes it too long; a chosen
    one is then refused (422 naming ``id``). An id naming another namespace is refused
    before anything is looked up, so the answer never depends on which personas exist
    there. Global personas keep plain ids.
    """
    given, name = split_id(definition.id)
    if namespace is None:
        if given is not None:
            raise ValidationFailed([FieldIssue("id", f"'{definition.id}': a global persona "
                                                     "has a plain id, with no namespace")])
        return definition
    if given is not None and given != namespace:
        raise PermissionDenied(f"'{definition.id}': you can only create personas in "
                               f"{whose} namespace '{namespace}/'",
                               {"namespace": f"{namespace}/"})
    full = f"{namespace}/{name}"
    if len(full) > ID_MAX_LENGTH and definition.id_made_from_name:
        full = f"{namespace}/{id_from_name(definition.name, namespace)}"
    problem = reserved_name_problem(full)
    if problem is None and len(full) > ID_MAX_LENGTH:
        problem = f"'{full}' is longer than {ID_MAX_LENGTH} characters; choose a shorter name"
    if problem is not None:
        raise ValidationFailed([FieldIssue("id", problem)])
    return definition if full == definition.id else definition.model_copy(update={"id": full})
