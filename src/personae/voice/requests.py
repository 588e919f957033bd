"""What a voice client may send, checked: bounded frames and known JSON requests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from personae.errors import InvalidInput, TooLarge

MAX_FRAME_BYTES = 64 * 1024  # one binary audio frame (a second of 16 kHz PCM is 32 KiB)
MAX_TEXT_BYTES = 64 * 1024  # one JSON request
INPUT_FORMATS = ("pcm16", "webm", "ogg")
EXPECTED = ('expected {"type": "start" | "message" | "switch" | "interrupt" | '
            '"end_of_speech", ...}')


@dataclass(frozen=True, slots=True)
class Start:
    format: str
    sample_rate: int


@dataclass(frozen=True, slots=True)
class Message:
    content: str


@dataclass(frozen=True, slots=True)
class Switch:
    persona_id: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    pass


@dataclass(frozen=True, slots=True)
class EndOfSpeech:
    pass


Request = Start | Message | Switch | Interrupt | EndOfSpeech


def check_frame(data: bytes) -> bytes:
    if len(data) > MAX_FRAME_BYTES:
        raise TooLarge(f"an audio frame is at most {MAX_FRAME_BYTES} bytes, "
                       f"not {len(data)}; send audio in short frames (20-100 ms)")
    return data


def parse_request(text: str) -> Request:
    """One JSON text frame as a request; InvalidInput (or TooLarge) when it is none."""
    if len(text.encode()) > MAX_TEXT_BYTES:
        raise TooLarge(f"a JSON request is at most {MAX_TEXT_BYTES} bytes")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput(f"not JSON: {EXPECTED}") from None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "start":
        return _start(data)
    if kind == "message":
        return Message(_text(data, "content"))
    if kind == "switch":
        return Switch(_text(data, "persona_id"))
    if kind == "interrupt":
        return Interrupt()
    if kind == "end_of_speech":
        return EndOfSpeech()
    raise InvalidInput(EXPECTED)


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"{key}: expected a string", {"param": key})
    return value


def _start(data: dict[str, Any]) -> Start:
    fmt = data.get("format", "pcm16")
    if fmt not in INPUT_FORMATS:
        raise InvalidInput(f"format: expected one of {', '.join(INPUT_FORMATS)}",
                           {"param": "format"})
    rate = data.get("sample_rate", 16_000)
    if isinstance(rate, bool) or not isinstance(rate, int) or not 8_000 <= rate <= 192_000:
        raise InvalidInput("sample_rate: expected an integer from 8000 to 192000",
                           {"param": "sample_rate"})
    return Start(fmt, rate)
