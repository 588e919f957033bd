"""A model's answer reduced to the post: wrappers stripped, never a word added.

Models asked for "the post text only" still wrap it. Exactly these are removed, and
only where they are plainly not part of the post:

* a code fence around the whole answer (```` ``` ```` or ```` ```text ```` ... ```` ``` ````);
* a first line that introduces the answer and ends with a colon ("Here is your
  post:", "Sure! Here's a rewrite:", "Certainly, here is the revised version:");
* a label at the very start: "Post:", "Rewritten post:", "Draft:", "Tweet:", ...;
* a last paragraph (after a blank line) made only of meta lines, optionally in
  parentheses: "Word count: ...", "Character count: ...", "Hook: ...",
  "Explanation: ...", "Changes: ...", and "Note: ..." when the note is about the
  writing (it names the post, rewrite, version, draft, characters, words, limit,
  tone or voice, or what was kept or changed);
* one pair of matching quote marks around the whole post, when no other mark of the
  same kind is inside it.

These are repeated until nothing changes (a quoted post inside a fence, ...).
Everything else, including a post's own first line, hashtags and quotes, is kept.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"\A```[\w+-]*[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL)
_INTRO = re.compile(
    r"\A(?:sure|certainly|of course|okay|ok|absolutely|great)?[!,.]?\s*"
    r"(?:here(?:'s| is| are)|below is|this is)\b[^\n]*:[ \t]*(?:\n|\Z)",
    re.IGNORECASE)
_LABEL = re.compile(
    r"\A(?:(?:rewritten|revised|new|final|optimi[sz]ed|updated)\s+)?"
    r"(?:post|draft|version|text|caption|tweet|rewrite)\s*:[ \t]*\n?", re.IGNORECASE)
_META_LINE = re.compile(
    r"\A\(?\s*(?:word count|character count|char count|characters|hook|"
    r"explanation|changes(?: made)?)\s*:", re.IGNORECASE)
# "Note:" is meta only when it talks about the writing itself, not the post's subject.
_META_NOTE = re.compile(
    r"\A\(?\s*notes?\s*:.*\b(?:post|rewrite|rewritten|version|draft|tweet|characters?|"
    r"words?|limit|tone|voice|kept|changed)\b", re.IGNORECASE)
_PAIRS = {'"': '"', "\u201c": "\u201d", "'": "'", "\u2018": "\u2019"}
_SAME_KIND = {'"': '"\u201c\u201d', "\u201c": '"\u201c\u201d', "'": "'\u2018\u2019",
              "\u2018": "'\u2018\u2019"}
MAX_PASSES = 4


def clean(answer: str) -> str:
    """The post in ``answer`` (see the module doc for exactly what is stripped)."""
    text = answer.strip()
    for _ in range(MAX_PASSES):
        stripped = _strip_once(text)
        if stripped == text:
            break
        text = stripped
    return text


def _strip_once(text: str) -> str:
    fence = _FENCE.match(text)
    if fence:
        text = fence.group("body").strip()
    text = _INTRO.sub("", text, count=1).strip()
    text = _LABEL.sub("", text, count=1).strip()
    return _unquoted(_without_meta_tail(text))


def _without_meta_tail(text: str) -> str:
    head, sep, tail = text.rpartition("\n\n")
    if not sep or not head.strip():
        return text
    lines = [line for line in tail.splitlines() if line.strip()]
    if lines and all(_META_LINE.match(line.strip()) or _META_NOTE.match(line.strip())
                     for line in lines):
        return head.strip()
    return text


def _unquoted(text: str) -> str:
    if len(text) < 2 or text[0] not in _PAIRS or text[-1] != _PAIRS[text[0]]:
        return text
    inner = text[1:-1]
    if any(mark in inner for mark in _SAME_KIND[text[0]]):
        return text
    return inner.strip()
