"""Bounds on writing samples, and reading them from a folder.

Every bound is checked before the text is measured or sent to a model, so a request
cannot make the server hold or analyse more than these limits allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from personae.errors import FieldIssue, TooLarge, ValidationFailed
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


def check_samples(samples: Sequence[SampleText]) -> list[SampleText]:
    """The samples without blank ones, or a clear 422/413 naming the bound broken."""
    kept = [sample for sample in samples if sample.text.strip()]
    if not kept:
        raise ValidationFailed([FieldIssue("samples", "send at least one sample of your "
                                           "own writing (the samples were empty)")])
    if len(kept) > MAX_SAMPLES:
        raise ValidationFailed([FieldIssue("samples", f"{len(kept)} samples; at most "
                                           f"{MAX_SAMPLES} are accepted")])
    for position, sample in enumerate(kept):
        if len(sample.text) > MAX_SAMPLE_CHARS:
            raise TooLarge(f"sample {position} has {len(sample.text):,} characters; at most "
                           f"{MAX_SAMPLE_CHARS:,} are accepted in one sample",
                           {"limit": MAX_SAMPLE_CHARS, "sample": position})
        if sample.title is not None and len(sample.title) > MAX_TITLE_CHARS:
            raise ValidationFailed([FieldIssue(f"samples[{position}].title", f"at most "
                                               f"{MAX_TITLE_CHARS} characters")])
    total = sum(len(sample.text) for sample in kept)
    if total > MAX_TOTAL_CHARS:
        raise TooLarge(f"the samples have {total:,} characters in all; at most "
                       f"{MAX_TOTAL_CHARS:,} are accepted", {"limit": MAX_TOTAL_CHARS})
    return kept


def check_enough_words(word_count: int) -> None:
    """Refuse samples too short to measure (counted by the language's own tokenizer)."""
    if word_count < MIN_TOTAL_WORDS:
        raise ValidationFailed([FieldIssue("samples", f"the samples have {word_count} words "
                                           f"in all; at least {MIN_TOTAL_WORDS} are needed "
                                           "to measure a style (2,500 or more give stable "
                                           "results)")])


def read_folder(folder: Path) -> list[SampleText]:
    """The ``*.txt`` and ``*.md`` files directly in ``folder``, sorted by name, as UTF-8.

    A symlink leading out of the folder is refused, and each file's size is checked
    before it is read.
    """
    if not folder.is_dir():
        raise ValidationFailed([FieldIssue("samples", f"{folder} is not a folder")])
    root = folder.resolve()
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)
    if len(paths) > MAX_SAMPLES:
        raise ValidationFailed([FieldIssue("samples", f"{len(paths)} sample files in "
                                           f"{folder}; at most {MAX_SAMPLES} are accepted")])
    return check_samples([_read_file(path, root) for path in paths])


def _read_file(path: Path, root: Path) -> SampleText:
    target = path.resolve()
    if not target.is_relative_to(root):
        raise ValidationFailed([FieldIssue(path.name, "links outside the samples folder; "
                                           "copy the file in instead")])
    if not target.is_file():
        raise ValidationFailed([FieldIssue(path.name, "is not a file")])
    size = target.stat().st_size
    if size > MAX_SAMPLE_BYTES:
        raise TooLarge(f"{path.name} is {size:,} bytes; a sample may have at most "
                       f"{MAX_SAMPLE_CHARS:,} characters", {"limit": MAX_SAMPLE_CHARS})
    try:
        text = target.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed([FieldIssue(path.name, f"is not UTF-8 text ({exc.reason} at "
                                           f"byte {exc.start})")]) from exc
    return SampleText(text.lstrip("\ufeff"), title=path.stem[:MAX_TITLE_CHARS])
