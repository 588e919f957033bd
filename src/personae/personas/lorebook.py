"""Lorebooks: a card's ``character_book`` and SillyTavern World Info files, as lore entries.

Both shapes become knowledge items with lore fields (see ``KnowledgeItem``) and
:class:`LorebookSettings`. A World Info file (``{"entries": {"0": {"key": [...],
"content": ..., "disable": ...}}}``) is read as SillyTavern itself turns one into a
``character_book`` (entry options under ``extensions``), so one converter reads both.
What an entry carries that Personae keeps but does not apply (chat-depth positions,
probabilities, groups, timed effects, decorators) stays in the item's ``extensions``
and is reported, one warning per kind with a count. Export (:func:`character_book_from`)
writes V2-shaped entries back, decorators and options included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from personae.errors import InvalidInput
from personae.personas import card_versions
from personae.personas.schema import (
    MAX_KEY_LENGTH,
    MAX_LORE_KEYS,
    KnowledgeItem,
    LorebookSettings,
    PersonaDefinition,
    compile_regex_key,
    regex_key,
)

MAX_ENTRIES = 5_000
MAX_CONTENT_CHARS = 64 * 1024
DECORATORS = card_versions.DECORATORS  # item extension: a V3/RisuAI entry's ``@@`` lines
_LOGIC = ("and_any", "not_all", "not_any", "and_all")  # SillyTavern's selectiveLogic 0..3
_POSITIONS = {0: "before_char", 1: "after_char"}
_SETTINGS_KEYS = ("name", "scan_depth", "token_budget", "recursive_scanning", "extensions")
_ENTRY_KEYS = frozenset({"keys", "secondary_keys", "content", "enabled", "insertion_order",
                         "case_sensitive", "name", "comment", "priority", "id", "selective",
                         "constant", "position", "extensions", "use_regex"})
# World Info entry field -> its place in a character_book entry (SillyTavern's own export).
_WORLD_INFO_TOP = {"uid": "id", "key": "keys", "keysecondary": "secondary_keys",
                   "comment": "comment", "content": "content", "constant": "constant",
                   "selective": "selective", "order": "insertion_order",
                   "caseSensitive": "case_sensitive"}
_WORLD_INFO_EXTENSIONS = {"selectiveLogic": "selectiveLogic", "matchWholeWords":
                          "match_whole_words", "position": "position", "depth": "depth",
                          "probability": "probability", "useProbability": "useProbability",
                          "group": "group", "scanDepth": "scan_depth", "sticky": "sticky",
                          "cooldown": "cooldown", "delay": "delay",
                          "excludeRecursion": "exclude_recursion",
                          "preventRecursion": "prevent_recursion",
                          "delayUntilRecursion": "delay_until_recursion",
                          "vectorized": "vectorized"}
# Kept but not applied: (test on an entry's extensions, what the warning says).
_UNUSED: tuple[tuple[Callable[[dict[str, Any]], bool], str], ...] = (
    (lambda x: x.get("position") not in (None, 0, 1),
     "are placed at a chat depth, in the author's note or around the examples; "
     "placed after the character instead"),
    (lambda x: bool(x.get("useProbability")) and _number(x.get("probability"), 100) < 100,
     "have a trigger probability below 100%; they fire every time"),
    (lambda x: bool(x.get("group")), "belong to inclusion groups; groups are not applied"),
    (lambda x: any(_number(x.get(k), 0) for k in ("sticky", "cooldown", "delay")),
     "have timed effects (sticky, cooldown, delay); not applied"),
    (lambda x: x.get("scan_depth") is not None,
     "set their own scan depth; the lorebook's is used"),
    (lambda x: any(x.get(k) for k in ("exclude_recursion", "prevent_recursion",
                                      "delay_until_recursion")),
     "set recursion options; not applied"),
    (lambda x: bool(x.get("vectorized")), "are vectorized; they fire on their keys only"),
    (lambda x: bool(x.get(DECORATORS)), "carry decorators (@@ lines); kept, not applied"),
)


@dataclass
class Lore:
    """Entries read from a lorebook, as loose knowledge items, and its settings."""

    items: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    kind: str = "character-book"  # or "world-info"


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default


# ----------------------------------------------------------------- recognising


def lorebook_kind(document: Any) -> str | None:
    """``"world-info"``, ``"character-book"`` or ``None`` (not a lorebook)."""
    if not isinstance(document, dict):
        return None
    entries = document.get("entries")
    if isinstance(entries, dict) and all(isinstance(e, dict) for e in entries.values()):
        return "world-info"
    if isinstance(entries, list) and all(isinstance(e, dict) for e in entries) and (
            not entries or any("keys" in e or "content" in e for e in entries)):
        return "character-book"
    return None


def read_lorebook(document: Any, source: str | None = None) -> Lore:
    """A World Info file or a bare ``character_book`` as lore; InvalidInput otherwise."""
    kind = lorebook_kind(document)
    if kind is None:
        raise InvalidInput(f"{source or 'the file'} is not a lorebook: expected SillyTavern "
                           "World Info JSON ({\"entries\": {...}}) or a Character Card "
                           "character_book ({\"entries\": [...]})")
    assert isinstance(document, dict)
    if kind == "world-info":
        name = document.get("name") or (source.rsplit(".", 1)[0] if source else None)
        book = {"name": name, "entries": [_from_world_info(e)
                                          for e in document["entries"].values()]}
        return from_character_book(book, "entries", kind="world-info")
    return from_character_book(document, "entries")


def _from_world_info(entry: dict[str, Any]) -> dict[str, Any]:
    """A World Info entry in character_book shape, as SillyTavern exports one."""
    book: dict[str, Any] = {"enabled": not entry.get("disable", False), "extensions": {}}
    for key, value in entry.items():
        if key in _WORLD_INFO_TOP:
            book[_WORLD_INFO_TOP[key]] = value
        elif key in _WORLD_INFO_EXTENSIONS:
            book["extensions"][_WORLD_INFO_EXTENSIONS[key]] = value
        elif key != "disable":
            book["extensions"][key] = value
    return book


# ----------------------------------------------------------------- converting


def from_character_book(book: Any, where: str, *, kind: str = "character-book") -> Lore:
    """A ``character_book`` object as lore; ``where`` names it in messages."""
    if not isinstance(book, dict):
        raise InvalidInput(f"{where}: a lorebook must be an object")
    entries = book.get("entries", [])
    if not isinstance(entries, list):
        raise InvalidInput(f"{where}.entries must be a list")
    if len(entries) > MAX_ENTRIES:
        raise InvalidInput(f"{where}: {len(entries)} entries; at most {MAX_ENTRIES}")
    lore = Lore(kind=kind)
    seen: Counter[str] = Counter()
    for number, entry in enumerate(entries):
        item = _item(entry, f"{where}.entries[{number}]", seen)
        if item is not None:
            lore.items.append(item)
    lore.settings = _settings(book, seen)
    lore.warnings = _warnings(seen)
    return lore


def _item(entry: Any, where: str, seen: Counter[str]) -> dict[str, Any] | None:
    if not isinstance(entry, dict):
        raise InvalidInput(f"{where} must be an object")
    raw = entry.get("content")
    decorators, content = card_versions.split_decorators(raw) if isinstance(raw, str) \
        else ([], "")
    content = content.strip()
    if not content:
        seen["empty"] += 1
        return None
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidInput(f"{where}.content is longer than {MAX_CONTENT_CHARS} characters")
    extensions = dict(entry["extensions"]) if isinstance(entry.get("extensions"), dict) else {}
    extensions.update({k: v for k, v in entry.items() if k not in _ENTRY_KEYS})
    if decorators:
        extensions[DECORATORS] = decorators
    # V3 says use_regex at the top, V2 (by card_versions) in extensions: keys become /k/.
    regexes = entry.get("use_regex") is True or extensions.pop("use_regex", None) is True
    item: dict[str, Any] = {
        "content": content,
        "keys": _keys(entry.get("keys"), f"{where}.keys", regexes, seen),
        "secondary_keys": _keys(entry.get("secondary_keys"), f"{where}.secondary_keys",
                                regexes, seen),
        "selective": bool(entry.get("selective")), "constant": bool(entry.get("constant")),
        "enabled": entry.get("enabled") is not False,
        "order": int(_number(entry.get("insertion_order"), 100)),
        "priority": int(_number(entry.get("priority"), 0)),
        **_options(entry, extensions), **_identity(entry),
    }
    if extensions:
        item["extensions"] = extensions
    for test, label in _UNUSED:
        seen[label] += test(extensions)
    if not item["keys"] and not item["constant"]:
        seen["keyless"] += 1
    return item


def _identity(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry's id and its name (or comment) as the item's title."""
    found: dict[str, Any] = {}
    title = entry.get("name") or entry.get("comment")
    if isinstance(title, str) and title.strip():
        found["title"] = title.strip()
    if isinstance(entry.get("id"), int | str) and not isinstance(entry.get("id"), bool):
        found["id"] = str(entry["id"])
    return found


def _options(entry: dict[str, Any], extensions: dict[str, Any]) -> dict[str, Any]:
    """Options a card writes at the top or (SillyTavern) under ``extensions``; the
    ones mapped onto fields are taken out of ``extensions``, export puts them back."""
    logic = extensions.get("selectiveLogic")
    if isinstance(logic, int) and not isinstance(logic, bool) and 0 <= logic < len(_LOGIC):
        del extensions["selectiveLogic"]
    else:
        logic = 0
    case = _take_flag(extensions, "case_sensitive")
    if isinstance(entry.get("case_sensitive"), bool):
        case = entry["case_sensitive"]
    place = extensions.get("position")
    position: Any
    if place in _POSITIONS:
        del extensions["position"]
        position = _POSITIONS[place]
    else:
        given = entry.get("position")
        position = given if given in _POSITIONS.values() else "after_char"
    return {"secondary_logic": _LOGIC[logic], "case_sensitive": bool(case),
            "whole_words": bool(_take_flag(extensions, "match_whole_words")),
            "position": position}


def _take_flag(extensions: dict[str, Any], key: str) -> bool | None:
    """A true/false (or null: the app's default) option, taken out of ``extensions``."""
    value = extensions.get(key)
    if key in extensions and (value is None or isinstance(value, bool)):
        del extensions[key]
        return value
    return None


def _keys(value: Any, where: str, regexes: bool, seen: Counter[str]) -> list[str]:
    """Clean keys: a comma-separated string split, blanks dropped, invalid regexes
    dropped (counted), V3 ``use_regex`` keys written ``/pattern/``."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    keys = [k.strip() for k in value if isinstance(k, str) and k.strip()]
    if len(keys) > MAX_LORE_KEYS:
        raise InvalidInput(f"{where}: {len(keys)} keys; at most {MAX_LORE_KEYS}")
    if regexes:
        keys = [k if regex_key(k) else f"/{k}/" for k in keys]
    long = next((k for k in keys if len(k) > MAX_KEY_LENGTH), None)
    if long is not None:
        raise InvalidInput(f"{where}: a key is longer than {MAX_KEY_LENGTH} characters")
    valid = [k for k in keys if regex_key(k) is None or compile_regex_key(k) is not None]
    seen["bad regex"] += len(keys) - len(valid)
    return valid


def _settings(book: dict[str, Any], seen: Counter[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if isinstance(book.get("name"), str) and book["name"].strip():
        settings["name"] = book["name"].strip()
    for key, low, high in (("scan_depth", 0, 100), ("token_budget", 1, 32768)):
        value = book.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            settings[key] = min(max(int(value), low), high)
            seen[f"clamped {key}"] += settings[key] != value
    if isinstance(book.get("recursive_scanning"), bool):
        settings["recursive_scanning"] = book["recursive_scanning"]
    extensions = dict(book["extensions"]) if isinstance(book.get("extensions"), dict) else {}
    extensions.update({k: v for k, v in book.items()
                       if k not in (*_SETTINGS_KEYS, "entries")})
    if extensions:
        settings["extensions"] = extensions
    return settings


_SINGULAR_VERBS = {"are": "is", "have": "has", "belong": "belongs", "set": "sets",
                   "carry": "carries"}


def _singular(label: str) -> str:
    """``are placed ...`` -> ``is placed ...``: the label's verb for one entry."""
    verb, _, rest = label.partition(" ")
    return f"{_SINGULAR_VERBS.get(verb, verb)} {rest}"


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def _warnings(seen: Counter[str]) -> list[str]:
    warnings = [f"lorebook: {count} entr{'y' if count == 1 else 'ies'} "
                f"{_singular(label) if count == 1 else label}"
                for test, label in _UNUSED if (count := seen[label])]
    if empty := seen["empty"]:
        warnings.append(f"lorebook: {_entries(empty)} with no content "
                        f"{'was' if empty == 1 else 'were'} left out")
    if keyless := seen["keyless"]:
        verbs = ("has", "is") if keyless == 1 else ("have", "are")
        warnings.append(f"lorebook: {_entries(keyless)} {verbs[0]} no keys and {verbs[1]} "
                        "not constant; kept as plain knowledge, retrieved when relevant")
    if bad := seen["bad regex"]:
        warnings.append(f"lorebook: {bad} key{' is' if bad == 1 else 's are'} not valid "
                        "regular expressions; left out (they could never match)")
    warnings.extend(f"lorebook: {key.removeprefix('clamped ')} out of range; clamped"
                    for key in ("clamped scan_depth", "clamped token_budget") if seen[key])
    return warnings


# ----------------------------------------------------------------- exporting


def character_book_from(definition: PersonaDefinition) -> dict[str, Any] | None:
    """The persona's lore entries and settings as a V2 ``character_book`` (``None``
    when it has neither)."""
    entries = [_entry(item) for item in definition.knowledge if item.is_lore]
    settings = definition.lorebook
    if not entries and settings == LorebookSettings():
        return None
    extensions = dict(settings.extensions)
    book: dict[str, Any] = {"name": settings.name} if settings.name else {}
    if isinstance(extensions.get("description"), str):
        book["description"] = extensions.pop("description")
    book |= {"scan_depth": settings.scan_depth, "token_budget": settings.token_budget,
             "recursive_scanning": settings.recursive_scanning, "extensions": extensions,
             "entries": entries}
    return book


def _entry(item: KnowledgeItem) -> dict[str, Any]:
    extensions = dict(item.extensions)
    decorators = extensions.pop(DECORATORS, [])
    if item.secondary_logic != "and_any":
        extensions["selectiveLogic"] = _LOGIC.index(item.secondary_logic)
    if item.whole_words:
        extensions["match_whole_words"] = True
    content = "\n".join([*(d for d in decorators if isinstance(d, str)), item.content])
    entry: dict[str, Any] = {
        "keys": list(item.keys), "content": content, "extensions": extensions,
        "enabled": item.enabled, "insertion_order": item.order,
        "case_sensitive": item.case_sensitive, "priority": item.priority,
        "selective": item.selective, "secondary_keys": list(item.secondary_keys),
        "constant": item.constant, "position": item.position}
    if item.title:
        entry["name"] = entry["comment"] = item.title
    if item.id is not None:
        entry["id"] = int(item.id) if item.id.isdigit() else item.id
    return entry
