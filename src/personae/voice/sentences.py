"""Cuts a reply, as the model writes it, into pieces a synthesiser can speak.

The first piece may end at a clause (a comma, a colon, a dash) once it is long enough
to sound natural, or after its first few words when the model has written no
punctuation by then, so the first audio comes as early as possible (a voice turn
waits for its first piece to be written and then spoken); later pieces end at sentence
ends, which sound better. A full stop inside a number (3.5), a URL or after
an abbreviation (Dr., e.g.) ends nothing. Markdown is for eyes: its emphasis, code
marks, links and list markers are taken out of what is spoken.
"""

from __future__ import annotations

import re

CLAUSE_MARKS = frozenset(",;:—–")
SENTENCE_ENDS = frozenset(".!?…")
ENDS_WITHOUT_SPACE = frozenset("।॥。！？")  # Devanagari danda; CJK full stops
CLOSERS = frozenset("\"')]}”’»*_")
ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "cf", "no",
    "approx", "dept", "est", "fig", "inc", "ltd", "mt", "capt", "gen", "lt", "sgt", "rev"})

_FENCE = re.compile(r"```[^\n]*")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.MULTILINE)
_HEADING = re.compile(r"^\s*#{1,6}\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>\s?", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|~~|`+)")
_SPACES = re.compile(r"\s+")


def speakable(text: str) -> str:
    """``text`` without markdown markup, on one line."""
    text = _FENCE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _LIST_MARKER.sub("", text)
    text = _EMPHASIS.sub("", text)
    return _SPACES.sub(" ", text).strip()


class SentenceSplitter:
    """Feed it deltas; it hands back each speakable piece once it is complete."""

    def __init__(self, first_clause_chars: int = 12, max_piece_chars: int = 240,
                 first_words: int = 0) -> None:
        self.first_clause_chars = first_clause_chars
        self.max_piece_chars = max_piece_chars
        # A live call's first piece may end after this many words (0: at punctuation
        # only, as a whole recording is spoken: no one waits there for the first piece).
        self.first_words = first_words
        self._buffer = ""
        self._pieces_out = 0

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        pieces = []
        while (end := self._boundary(self._buffer)) is not None:
            piece, self._buffer = self._buffer[:end], self._buffer[end:]
            pieces.extend(self._speak(piece))
        return pieces

    def flush(self) -> list[str]:
        """The rest, at the end of the reply."""
        piece, self._buffer = self._buffer, ""
        return self._speak(piece)

    def _speak(self, piece: str) -> list[str]:
        spoken = speakable(piece)
        if not spoken or not any(ch.isalnum() for ch in spoken):
            return []
        self._pieces_out += 1
        return [spoken]

    def _boundary(self, text: str) -> int | None:
        """Where the first complete piece of ``text`` ends (exclusive), if it has one."""
        for index, char in enumerate(text):
            if char == "\n" or char in ENDS_WITHOUT_SPACE:
                return self._after_closers(text, index + 1)
            if char in SENTENCE_ENDS and self._ends_sentence(text, index):
                return self._after_closers(text, index + 1)
            if self._pieces_out == 0 and self._ends_clause(text, index):
                return index + 1
        return self._first_words(text) if self._pieces_out == 0 else self._overlong(text)

    def _ends_sentence(self, text: str, index: int) -> bool:
        after = self._after_closers(text, index + 1)
        if after >= len(text) or not text[after].isspace():
            return False  # wait for what follows: "3.5", "site.com", "..." go on
        if text[index] != ".":
            return True
        if text[index + 1:index + 2] == ".":
            return False  # an ellipsis written as dots: its last dot decides
        return not self._abbreviation(text, index)

    @staticmethod
    def _abbreviation(text: str, index: int) -> bool:
        line_start = text.rfind("\n", 0, index) + 1
        words = text[line_start:index].split()
        if not words:
            return False
        word = words[-1].lstrip("(\"'*_").lower()
        if word.isdigit() and len(words) == 1:
            return True  # "1." starting a line: a list marker
        return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())

    def _ends_clause(self, text: str, index: int) -> bool:
        char = text[index]
        is_dash = char == "-" and text[index - 1:index] == " "
        if char not in CLAUSE_MARKS and not is_dash:
            return False
        if len(text[:index + 1].strip()) < self.first_clause_chars:
            return False
        return index + 1 < len(text) and text[index + 1].isspace()

    def _first_words(self, text: str) -> int | None:
        """The first piece, when it has ``first_words`` words and no end yet: up to the
        space after them (a word is only complete once a space follows it)."""
        if self.first_words <= 0:
            return self._overlong(text)
        words = 0
        for index in range(1, len(text)):
            if text[index].isspace() and not text[index - 1].isspace():
                words += 1
                if words == self.first_words:
                    return index + 1
        return self._overlong(text)

    def _overlong(self, text: str) -> int | None:
        """A piece with no end in sight is cut at a space, to keep the audio coming."""
        if len(text) <= self.max_piece_chars:
            return None
        space = text.rfind(" ", 0, self.max_piece_chars)
        return space + 1 if space > 0 else self.max_piece_chars

    @staticmethod
    def _after_closers(text: str, index: int) -> int:
        while index < len(text) and text[index] in CLOSERS:
            index += 1
        return index
