"""Between card versions: what a V2 card has no place for is kept under its extensions.

V3 → V2 moves the V3-only fields into ``data.extensions["chara_card_v3"]`` (read back
when such a V2 card is exported as V3 again), and makes lorebook entries V2 entries:
``use_regex`` (V3 only) is dropped when false and kept in the entry's extensions when
true, and RisuAI decorators (leading ``@@name value`` / ``@@@name`` lines of an entry's
content, which V2 apps would show the model as text) move to the entry's
``extensions.ccv3_decorators``, ``@@depth N`` and ``@@role x`` also as SillyTavern's
``position: 4`` / ``depth: N`` / ``role``. V2 → V3 undoes that and adds only what V3
requires (``use_regex`` on every entry).
"""

from __future__ import annotations

from typing import Any

V3_STASH = "chara_card_v3"  # V2 card extension holding the V3-only fields
DECORATORS = "ccv3_decorators"
# Values the V3 fields take when a card does not say: not worth carrying in a V2 card.
_V3_DEFAULTS: dict[str, Any] = {
    "group_only_greetings": [],
    "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
}
_ROLES = {"system": 0, "user": 1, "assistant": 2}  # SillyTavern's entry roles
_AT_DEPTH = 4  # SillyTavern's entry position "at depth"


def stash_v3_only(data: dict[str, Any], v3_only: tuple[str, ...]) -> dict[str, Any]:
    """V3 card data as V2 data: V3-only fields (unless at their defaults) under
    ``extensions["chara_card_v3"]``."""
    kept = {key: value for key, value in data.items() if key not in v3_only}
    stash = {key: data[key] for key in v3_only
             if key in data and data[key] != _V3_DEFAULTS.get(key, object())}
    if stash:
        extensions = kept.get("extensions")
        extensions = dict(extensions) if isinstance(extensions, dict) else {}
        previous = extensions.get(V3_STASH)
        extensions[V3_STASH] = {**(previous if isinstance(previous, dict) else {}), **stash}
        kept["extensions"] = extensions
    return kept


def set_stashed(data: dict[str, Any], key: str, value: Any) -> None:
    """Put one V3-only value in a V2 card's stash (removed when at its default)."""
    extensions = data.get("extensions")
    extensions = dict(extensions) if isinstance(extensions, dict) else {}
    stash = extensions.get(V3_STASH)
    stash = dict(stash) if isinstance(stash, dict) else {}
    if value == _V3_DEFAULTS.get(key, object()):
        stash.pop(key, None)
    else:
        stash[key] = value
    if stash:
        extensions[V3_STASH] = stash
    else:
        extensions.pop(V3_STASH, None)
    if extensions or "extensions" in data:
        data["extensions"] = extensions


def unstash_v3_only(data: dict[str, Any], v3_only: tuple[str, ...]) -> dict[str, Any]:
    """V2 card data as V3 data: fields stashed by :func:`stash_v3_only` put back."""
    extensions = data.get("extensions")
    if not isinstance(extensions, dict) or not isinstance(extensions.get(V3_STASH), dict):
        return dict(data)
    extensions = dict(extensions)
    stash = extensions.pop(V3_STASH)
    restored = {**data, "extensions": extensions}
    restored.update({key: value for key, value in stash.items() if key in v3_only})
    return restored


def stashed(data: dict[str, Any], key: str) -> Any:
    extensions = data.get("extensions")
    stash = extensions.get(V3_STASH) if isinstance(extensions, dict) else None
    return stash.get(key) if isinstance(stash, dict) else None


def book_to_v2(book: Any) -> Any:
    return _entries_mapped(book, _entry_to_v2)


def book_to_v3(book: Any) -> Any:
    return _entries_mapped(book, _entry_to_v3)


def _entries_mapped(book: Any, convert: Any) -> Any:
    if not isinstance(book, dict) or not isinstance(book.get("entries"), list):
        return book
    return {**book, "entries": [convert(entry) if isinstance(entry, dict) else entry
                                for entry in book["entries"]]}


def split_decorators(content: str) -> tuple[list[str], str]:
    """Leading ``@@`` decorator lines of an entry's content, and the content after them."""
    lines = content.split("\n")
    count = 0
    while count < len(lines) and lines[count].startswith("@@"):
        count += 1
    return lines[:count], "\n".join(lines[count:])


def _entry_to_v2(entry: dict[str, Any]) -> dict[str, Any]:
    entry = dict(entry)
    given = entry.get("extensions")
    extensions = dict(given) if isinstance(given, dict) else {}
    if entry.pop("use_regex", None) is True:
        extensions["use_regex"] = True
    content = entry.get("content")
    decorators, rest = split_decorators(content) if isinstance(content, str) else ([], "")
    if decorators:
        entry["content"] = rest
        extensions[DECORATORS] = decorators
        _sillytavern_placement(decorators, extensions)
    if extensions or "extensions" in entry:
        entry["extensions"] = extensions
    return entry


def _sillytavern_placement(decorators: list[str], extensions: dict[str, Any]) -> None:
    """``@@depth N`` and ``@@role x`` as the entry extensions SillyTavern reads."""
    for line in decorators:
        name, _, value = line.lstrip("@").partition(" ")
        value = value.strip()
        if name == "depth" and value.isdigit():
            extensions.setdefault("position", _AT_DEPTH)
            extensions.setdefault("depth", int(value))
        elif name == "role" and value.lower() in _ROLES:
            extensions.setdefault("role", _ROLES[value.lower()])


def _entry_to_v3(entry: dict[str, Any]) -> dict[str, Any]:
    entry = dict(entry)
    given = entry.get("extensions")
    if isinstance(given, dict) and (DECORATORS in given or "use_regex" in given):
        extensions = dict(given)
        decorators = extensions.pop(DECORATORS, None)
        if isinstance(decorators, list) and isinstance(entry.get("content"), str):
            lines = [line for line in decorators if isinstance(line, str)]
            entry["content"] = "\n".join([*lines, entry["content"]])
        if extensions.get("use_regex") is True and "use_regex" not in entry:
            entry["use_regex"] = extensions.pop("use_regex")
        entry["extensions"] = extensions
    entry.setdefault("use_regex", False)  # required in V3
    return entry
