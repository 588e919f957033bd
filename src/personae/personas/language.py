"""Language names and codes: personas store a BCP-47 tag, people may write a name."""

from __future__ import annotations

from functools import lru_cache

import langcodes


@lru_cache(maxsize=512)
def normalize_language(value: str) -> str:
    """Return the standard BCP-47 tag for a tag or an English language name.

    ``"Hindi"`` and ``"hi"`` both give ``"hi"``; an unknown value raises ValueError.
    """
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    if langcodes.tag_is_valid(text) and langcodes.Language.get(text).is_valid():
        return langcodes.standardize_tag(text)
    try:
        found = langcodes.find(text)
    except LookupError:
        found = None
    names = {found.display_name().lower(), found.autonym().lower()} if found else set()
    if found is None or text.lower() not in names:  # find() also matches loosely
        raise ValueError(f"{value!r} is not a known language name or BCP-47 code")
    return found.to_tag()


@lru_cache(maxsize=512)
def language_name(tag: str) -> str:
    """English display name of a tag, e.g. ``"hi"`` -> ``"Hindi"``."""
    try:
        return langcodes.Language.get(tag).display_name()
    except (LookupError, ValueError):
        return tag
