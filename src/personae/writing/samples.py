"""Bounds on writing samples, and reading them from a folder.

Every bound is checked before the text is measured or sent to a model, so a request
cannot make the server hold or analyse more than these limits allow.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from personae.errors import FieldIssue, TooLarge, ValidationFailed
from personae.writing import text
from personae.writing.records import SampleText

# Attribution research wants ~2,500-5,000 words; 200 posts are far more than that,
# and keep one request's measuring (linear in the text) well under a second.
MAX_SAMPLES = 200
# A long essay or a chapter; more is better split into several samples.
MAX_SAMPLE_CHARS = 100_000
# All samples together: what one synthesis prompt's evidence check and one measure may
# walk through; about 150,000 words, far past where measurements stop improving.
MAX_TOTAL_CHARS = 1_000_000
# Under this, no measurement says anything about a person's style.
MIN_TOTAL_WORDS = 50
# UTF-8 needs at most 4 bytes a character: a file larger than this cannot fit.
MAX_SAMPLE_BYTES = 4 * MAX_SAMPLE_CHARS
SAMPLE_SUFFIXES = (".txt", ".md")
MAX_TITLE_CHARS = 200
# Telling writing from noise: real text in any language keeps these easily (measured
# on English, Spanish, Hindi, Japanese and Chinese: over 97% of letters in its top
# three scripts, detection over 0.99); random code points break one or more.
LANGUAGE_CHECK_CHARS = 20_000
NOT_TEXT_CATEGORIES = frozenset({"Cn", "Co", "Cs", "Cc"})  # unassigned, private, ...
MAX_NOT_TEXT_SHARE = 0.2
MIN_LETTER_SHARE = 0.5
MAIN_SCRIPTS, MIN_MAIN_SCRIPT_SHARE = 3, 0.9
MIN_LANGUAGE_PROBABILITY = 0.9
NO_LANGUAGE = frozenset({"und", "zxx"})


# C0 and C1 control characters (and DEL) other than tab, line feed and carriage return:
# no writing holds them, and databases refuse some (PostgreSQL text cannot hold U+0000).
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _invalid(path: str, message: str, subject: str = "samples") -> ValidationFailed:
    return ValidationFailed([FieldIssue(path, message)], subject=subject)


def check_no_control_characters(value: str, path: str, *, subject: str = "samples") -> None:
    """A 422 naming ``path`` and the character when ``value`` holds a control character."""
    found = CONTROL_CHARACTER.search(value)
    if found is not None:
        raise _invalid(path, f"contains the control character U+{ord(found.group()):04X} "
                             f"at character {found.start():,}; only tab, line feed and "
                             "carriage return are accepted", subject)


def check_samples(samples: Sequence[SampleText]) -> list[SampleText]:
    """The samples without blank ones, or a clear 422/413 naming the bound broken."""
    kept = [sample for sample in samples if sample.text.strip()]
    if not kept:
        raise _invalid("samples", "send at least one sample of your "
                                           "own writing (the samples were empty)")
    if len(kept) > MAX_SAMPLES:
        raise _invalid("samples", f"{len(kept)} samples; at most "
                                           f"{MAX_SAMPLES} are accepted")
    for position, sample in enumerate(kept):
        if len(sample.text) > MAX_SAMPLE_CHARS:
            raise TooLarge(f"sample {position} has {len(sample.text):,} characters; at most "
                           f"{MAX_SAMPLE_CHARS:,} are accepted in one sample",
                           {"limit": MAX_SAMPLE_CHARS, "sample": position})
        if sample.title is not None and len(sample.title) > MAX_TITLE_CHARS:
            raise _invalid(f"samples[{position}].title", f"at most "
                                               f"{MAX_TITLE_CHARS} characters")
        check_no_control_characters(sample.text, f"samples[{position}].text")
        check_no_control_characters(sample.title or "", f"samples[{position}].title")
    total = sum(len(sample.text) for sample in kept)
    if total > MAX_TOTAL_CHARS:
        raise TooLarge(f"the samples have {total:,} characters in all; at most "
                       f"{MAX_TOTAL_CHARS:,} are accepted", {"limit": MAX_TOTAL_CHARS})
    return kept


def check_enough_words(word_count: int) -> None:
    """Refuse samples too short to measure (counted by the language's own tokenizer)."""
    if word_count < MIN_TOTAL_WORDS:
        raise _invalid("samples", f"the samples have {word_count} words "
                                           f"in all; at least {MIN_TOTAL_WORDS} are needed "
                                           "to measure a style (2,500 or more give stable "
                                           "results)")


def check_is_writing(samples: Sequence[SampleText], language: str | None) -> None:
    """Refuse samples that are not writing in a language: mostly unassigned, control or
    symbol characters, letters from a jumble of scripts, or (when no language is named)
    text the language detector recognises no language in, or too few words.

    Judged on up to :data:`LANGUAGE_CHECK_CHARS` taken from across the samples, so a
    large request is checked as fast as a small one.
    """
    excerpt = _excerpt([s.text for s in samples], LANGUAGE_CHECK_CHARS)
    problem = _character_problem(excerpt)
    if problem is None:
        check_enough_words(_words_up_to(samples, language, MIN_TOTAL_WORDS))
    if problem is None and language is None:
        found, probability = text.detect_language(excerpt)
        if found in NO_LANGUAGE or probability < MIN_LANGUAGE_PROBABILITY:
            problem = ("no language could be recognised in them (send your own writing "
                       "in a language, or name it with language)")
    if problem is not None:
        raise _invalid("samples", f"the samples do not read as writing: {problem}")


def _excerpt(texts: Sequence[str], budget: int) -> str:
    share = max(1, budget // max(1, len(texts)))
    return "\n".join(t[:share] for t in texts)[:budget]


def _character_problem(excerpt: str) -> str | None:
    """Why these characters cannot be writing, or None."""
    shown = [ch for ch in excerpt if not ch.isspace()]
    if not shown:
        return "they hold no visible characters"
    categories = [unicodedata.category(ch) for ch in shown]
    if sum(c in NOT_TEXT_CATEGORIES for c in categories) > MAX_NOT_TEXT_SHARE * len(shown):
        return "most characters are unassigned, private-use or control characters"
    letters = [ch for ch, c in zip(shown, categories, strict=True) if c[0] in "LM"]
    if len(letters) < MIN_LETTER_SHARE * len(shown):
        return "most characters are symbols, digits or punctuation, not letters"
    scripts = Counter(script_of(ch) for ch in letters)
    in_main = sum(n for _, n in scripts.most_common(MAIN_SCRIPTS))
    if in_main < MIN_MAIN_SCRIPT_SHARE * len(letters):
        return (f"the letters come from {len(scripts)} different scripts at random, as no "
                "language is written")
    return None


def script_of(ch: str) -> str:
    """The script a letter belongs to, as its Unicode name begins (LATIN, CJK, ...)."""
    return unicodedata.name(ch, "?").split(" ", 1)[0]


def _words_up_to(samples: Sequence[SampleText], language: str | None, enough: int) -> int:
    """The samples' words, counted until ``enough`` (more is not needed here)."""
    found = 0
    for sample in samples:
        tag = language or text.detect_language(sample.text[:LANGUAGE_CHECK_CHARS])[0]
        found += len(text.words(sample.text, tag))
        if found >= enough:
            break
    return found


def read_folder(folder: Path) -> list[SampleText]:
    """The ``*.txt`` and ``*.md`` files directly in ``folder``, sorted by name, as UTF-8.

    A symlink leading out of the folder is refused, and each file's size is checked
    before it is read.
    """
    if not folder.is_dir():
        raise _invalid("samples", f"{folder} is not a folder")
    root = folder.resolve()
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)
    if len(paths) > MAX_SAMPLES:
        raise _invalid("samples", f"{len(paths)} sample files in "
                                           f"{folder}; at most {MAX_SAMPLES} are accepted")
    return check_samples([_read_file(path, root) for path in paths])


def _read_file(path: Path, root: Path) -> SampleText:
    target = path.resolve()
    if not target.is_relative_to(root):
        raise _invalid(path.name, "links outside the samples folder; "
                                           "copy the file in instead")
    if not target.is_file():
        raise _invalid(path.name, "is not a file")
    size = target.stat().st_size
    if size > MAX_SAMPLE_BYTES:
        raise TooLarge(f"{path.name} is {size:,} bytes; a sample may have at most "
                       f"{MAX_SAMPLE_CHARS:,} characters", {"limit": MAX_SAMPLE_CHARS})
    try:
        text = target.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(path.name, f"is not UTF-8 text ({exc.reason} at "
                                           f"byte {exc.start})") from exc
    check_no_control_characters(text, path.name)
    return SampleText(text.lstrip("\ufeff"), title=path.stem[:MAX_TITLE_CHARS])
