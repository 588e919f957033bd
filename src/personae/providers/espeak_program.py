"""The espeak-ng program, run as a separate process, and the clauses text is spoken in.

espeak-ng is GPL-3, so it is only ever run as a program (never loaded into this
process): for phonemes (Piper) and for its own formant voices. Both synthesisers
speak text one clause at a time, so the first clause's audio exists as soon as
possible and closing a stream early stops after the clause in progress.

The espeak-ng command line drops punctuation from its phoneme output (it turns it
into clause breaks), so :func:`split_clauses` keeps each clause's punctuation for
the caller to put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from dataclasses import dataclass

from personae.errors import ProviderError, ProviderTimeout, ProviderUnavailable

PROGRAM = "espeak-ng"
INSTALL_HINT = ("install the espeak-ng program: on Debian or Ubuntu `apt-get install "
                "espeak-ng`, on macOS `brew install espeak-ng`")
# A run of clause punctuation that ends a clause: followed by space or the end, so
# "3.14" and "e.g.x" stay whole.
_CLAUSE_END = re.compile(r"([.,!?;:…。！？，；：।॥]+)(?=\s|$)|\n+")
_ASCII_PUNCTUATION = str.maketrans({"…": ".", "。": ".", "।": ".", "॥": ".", "！": "!",
                                    "？": "?", "，": ",", "；": ";", "：": ":"})


@dataclass(frozen=True, slots=True)
class Clause:
    """One clause's words and the punctuation that ended it ("" if none)."""

    text: str
    punctuation: str


def split_clauses(text: str) -> list[Clause]:
    """``text`` as clauses, each with its closing punctuation (ASCII), empties dropped."""
    clauses: list[Clause] = []
    start = 0
    for match in _CLAUSE_END.finditer(text):
        _add_clause(clauses, text[start:match.start()], match.group(1) or "")
        start = match.end()
    _add_clause(clauses, text[start:], "")
    return clauses


def _add_clause(clauses: list[Clause], words: str, punctuation: str) -> None:
    words = " ".join(words.split())
    if any(ch.isalnum() for ch in words):
        clauses.append(Clause(words, punctuation.translate(_ASCII_PUNCTUATION)))


def program(provider: str) -> str:
    """The espeak-ng executable's path, or ProviderUnavailable saying how to install it."""
    found = shutil.which(PROGRAM)
    if found is None:
        raise ProviderUnavailable(provider, f"the {PROGRAM} program is not installed; "
                                  f"{INSTALL_HINT}", details={"program": PROGRAM})
    return found


async def run_program(provider: str, args: list[str], text: str, limit: float) -> bytes:
    """Run espeak-ng with ``text`` on stdin; its stdout. The process is killed if the
    caller is cancelled (a closed stream) or ``limit`` seconds pass."""
    process = await asyncio.create_subprocess_exec(
        program(provider), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(limit):
            out, err = await process.communicate(text.encode("utf-8"))
    except TimeoutError:
        raise ProviderTimeout(provider, f"{PROGRAM} took longer than {limit:g} s",
                              retryable=True) from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode != 0:
        reason = err.decode("utf-8", "replace").strip() or f"exit status {process.returncode}"
        raise ProviderError(provider, f"{PROGRAM} failed: {reason}")
    return out


def run_blocking(provider: str, args: list[str], timeout: float = 30.0) -> str:
    """espeak-ng's text output for ``args`` (for ``--voices``: read once, at start)."""
    import subprocess

    try:
        done = subprocess.run([program(provider), *args], capture_output=True,
                              timeout=timeout, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        raise ProviderUnavailable(provider, f"{PROGRAM} {' '.join(args)} failed: {exc}",
                                  ) from exc
    return done.stdout.decode("utf-8", "replace")
