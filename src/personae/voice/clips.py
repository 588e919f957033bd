"""Reply audio kept as files for a while, then removed.

A clip lives at ``<root>/<user id>/<session id or "_">/<clip id>.<ext>``; it is written
under a temporary name and renamed, so a reader never sees half a file. A clip's age
is its file's modification time (set from the store's clock), so expiry needs no
index. :meth:`ClipStore.open` returns an open file: on POSIX a sweep unlinking the
clip meanwhile leaves the reader's bytes intact, so a response being served is never
cut short. Clip ids are 32 hex characters; anything else is simply not found, so no
path is ever built from what a request sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from personae.errors import NotFound

MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "opus": "audio/ogg",
               "aac": "audio/aac", "flac": "audio/flac", "pcm": "audio/pcm"}
NO_SESSION = "_"
TEMP_SUFFIX = ".part"
TEMP_GRACE_SECONDS = 60.0  # a temporary file older than this was left by a crash
_CLIP_ID = re.compile(r"[0-9a-f]{32}")
_SAFE_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Clip:
    id: str
    media_type: str
    bytes: int
    expires_at: float  # seconds since the epoch


def is_clip_id(value: str) -> bool:
    return _CLIP_ID.fullmatch(value) is not None


def _folder_name(value: str) -> str:
    """A user or session id as one path component (hashed unless plainly safe)."""
    if _SAFE_PART.fullmatch(value) and value != NO_SESSION:
        return value
    return "h" + hashlib.sha256(value.encode()).hexdigest()[:32]


class ClipStore:
    """Reply audio files with a time to live, per user and session."""

    def __init__(self, root: Path, ttl_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def save(self, user_id: str, session_id: str | None, data: bytes, fmt: str) -> Clip:
        """Write one clip atomically; ``fmt`` is a key of :data:`MEDIA_TYPES`."""
        media_type = MEDIA_TYPES[fmt]
        clip_id = secrets.token_hex(16)
        folder = self._folder(user_id, session_id)
        now = self.clock()
        for attempt in range(3):  # a sweep may remove an empty folder under us
            folder.mkdir(parents=True, exist_ok=True)
            try:
                self._write(folder / f"{clip_id}.{fmt}", data, now)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        return Clip(clip_id, media_type, len(data), now + self.ttl_seconds)

    def open(self, user_id: str, clip_id: str) -> tuple[BinaryIO, str, int]:
        """The clip's open file, media type and size; the caller closes the file."""
        if not is_clip_id(clip_id):
            raise NotFound(f"audio '{clip_id[:40]}' not found")
        user_folder = self.root / _folder_name(user_id)
        for path in sorted(user_folder.glob(f"*/{clip_id}.*")):
            fmt = path.suffix.removeprefix(".")
            if fmt not in MEDIA_TYPES:
                continue
            with contextlib.suppress(FileNotFoundError):
                file = path.open("rb")
                stat = os.fstat(file.fileno())
                if self._expired(stat.st_mtime):
                    file.close()
                    break
                return file, MEDIA_TYPES[fmt], stat.st_size
        raise NotFound(f"audio '{clip_id}' not found (or expired)")

    def remove_session(self, user_id: str, session_id: str) -> None:
        """Remove every clip of one session (it was deleted)."""
        shutil.rmtree(self._folder(user_id, session_id), ignore_errors=True)

    def sweep(self) -> int:
        """Remove expired clips, leftover temporary files and empty folders; returns
        how many files went."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for user_folder in self.root.iterdir():
            if not user_folder.is_dir():
                continue
            for session_folder in user_folder.iterdir():
                if session_folder.is_dir():
                    removed += self._sweep_folder(session_folder)
                    _remove_if_empty(session_folder)
            _remove_if_empty(user_folder)
        return removed

    def _sweep_folder(self, folder: Path) -> int:
        removed = 0
        now = self.clock()
        for path in folder.iterdir():
            try:
                modified = path.stat().st_mtime
            except FileNotFoundError:
                continue
            leftover = (path.name.endswith(TEMP_SUFFIX)
                        and modified + TEMP_GRACE_SECONDS <= now)
            if leftover or (path.is_file() and self._expired(modified)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    def _expired(self, modified: float) -> bool:
        return modified + self.ttl_seconds <= self.clock()

    def _folder(self, user_id: str, session_id: str | None) -> Path:
        session = _folder_name(session_id) if session_id else NO_SESSION
        return self.root / _folder_name(user_id) / session

    @staticmethod
    def _write(path: Path, data: bytes, now: float) -> None:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            with temp.open("wb") as out:
                out.write(data)
            os.utime(temp, (now, now))
            temp.replace(path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (or already gone): leave it
        folder.rmdir()
