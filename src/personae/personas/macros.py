"""The macros Character Cards write in their text: ``{{char}}``, ``{{user}}``, ``{{original}}``.

Card text says ``{{char}}`` for the character's name and ``{{user}}`` for the person
talking to it (V1 cards: ``<BOT>``, ``<CHAR>``, ``<USER>``), in any case; ``{{// ...}}``
is a comment, removed. Personae substitutes them wherever card text reaches the model
or the user: the system prompt (``{{char}}`` once, when a version is prepared, and
``{{user}}`` per turn, so one prepared prompt serves every caller), greetings,
example dialogue, lore and knowledge, and ``post_history_instructions``.
"""

from __future__ import annotations

import re

DEFAULT_USER_NAME = "User"
MAX_USER_NAME_CHARS = 64

_CHAR = re.compile(r"\{\{\s*char\s*\}\}|<bot>|<char>", re.IGNORECASE)
_USER = re.compile(r"\{\{\s*user\s*\}\}|<user>", re.IGNORECASE)
_ORIGINAL = re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE)
_COMMENT = re.compile(r"\{\{//.*?\}\}", re.DOTALL)


def has_original(text: str) -> bool:
    """Whether ``text`` composes with a default (SillyTavern's ``{{original}}``)."""
    return _ORIGINAL.search(text) is not None


def substitute(text: str, *, char: str | None = None, user: str | None = None,
               original: str | None = None) -> str:
    """``text`` with the macros given replaced; a macro given as ``None`` is left as it
    is (for a later pass). Comments always go. Names are inserted literally."""
    if "{{" not in text and "<" not in text:
        return text
    text = _COMMENT.sub("", text)
    if char is not None:
        text = _CHAR.sub(lambda _: char, text)
    if user is not None:
        text = _USER.sub(lambda _: user, text)
    if original is not None:
        text = _ORIGINAL.sub(lambda _: original, text)
    return text


def user_name_or_default(name: object) -> str:
    """The caller's display name (a non-blank string, cut to 64 characters) or "User"."""
    if isinstance(name, str) and name.strip():
        return name.strip()[:MAX_USER_NAME_CHARS]
    return DEFAULT_USER_NAME
