"""Turn uploaded content into the numbered segments a persona panel scores.

Content arrives as plain text, SubRip, WebVTT or JSON. Subtitle and JSON input
already has natural units (cues, items) and keeps their timestamps; plain text
is cut into sentences by pysbd and grouped, so every persona sees the same
segments in the same order. Every failure is an ``InvalidInput`` that says what
was wrong and where, because the message goes straight back to the uploader.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePath
from typing import Any, Literal, cast

import pysbd
import srt
import webvtt
from pysbd.languages import LANGUAGE_CODES  # type: ignore[import-untyped]
from webvtt.errors import MalformedCaptionError, MalformedFileError

from personae.errors import InvalidInput

ContentFormat = Literal["text", "srt", "vtt", "json"]
FORMATS: tuple[str, ...] = ("text", "srt", "vtt", "json")
MAX_SEGMENTS = 5000
MAX_CONTENT_CHARS = 2_000_000

_BOM = "\ufeff"
_EXTENSIONS: dict[str, ContentFormat] = {".srt": "srt", ".vtt": "vtt", ".json": "json"}
_SRT_TIME = r"\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}"
_SRT_HEAD = re.compile(rf"\A\s*\d+[ \t]*\n[ \t]*{_SRT_TIME}[ \t]*-->[ \t]*{_SRT_TIME}")
# Only the formatting each format defines is markup; any other "<...>" is the speaker's
# words, kept verbatim (pages escape it when they show it).
_SRT_MARKUP = re.compile(
    r"</?[ibu]>|<font(?:[ \t][^>\n]*)?>|</font>"  # <i> <b> <u> <font color=...>, closed too
    r"|\{\\[^}\n]*\}",  # {\an8}, {\pos(x,y)}: override codes
    re.IGNORECASE,
)
_VTT_CLASSES = r"(?:\.[^\s.<>&]+)*"  # <c.yellow.bg_blue>
_VTT_MARKUP = re.compile(  # WebVTT cue tags are case-sensitive
    rf"<(?:c|i|b|u|ruby|rt){_VTT_CLASSES}>"
    rf"|<(?:v|lang){_VTT_CLASSES}[ \t][^>\n]*>"  # <v Speaker>, <lang en-GB>
    r"|</(?:c|i|b|u|ruby|rt|v|lang)>"
    r"|<(?:\d{2,}:)?[0-5]\d:[0-5]\d\.\d{3}>"  # <00:00:01.000>, <01.500>: karaoke timing
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_MS = timedelta(milliseconds=1)
_WINDOW = 4_000  # characters pysbd reads at once; see _sentences
_MAX_WINDOW = 16_000

_Part = tuple[str, int | None, int | None]  # text, start_ms, end_ms


@dataclass(frozen=True, slots=True)
class Segment:
    """One unit a persona scores; timestamps only when the source had them."""

    index: int
    text: str
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SplitRule:
    """How plain text is cut: N sentences per segment, or sentences packed up to ~target_chars."""

    sentences_per_segment: int = 3
    target_chars: int | None = None


def split_rule(
    sentences_per_segment: int | None = None, target_chars: int | None = None
) -> SplitRule:
    """Build a ``SplitRule`` from user input, refusing sizes that make useless segments."""
    sentences = 3 if sentences_per_segment is None else sentences_per_segment
    _check_range("sentences_per_segment", sentences, 1, 50)
    if target_chars is not None:
        _check_range("target_chars", target_chars, 50, 20_000)
    return SplitRule(sentences_per_segment=sentences, target_chars=target_chars)


def _check_range(field: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"{field} must be a whole number from {low} to {high}, got {value!r}",
            {"field": field},
        )


def detect_format(text: str, filename: str | None = None) -> ContentFormat:
    """Guess the format: a filename extension is trusted first, then the content is sniffed."""
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if suffix:
        return _EXTENSIONS.get(suffix, "text")
    body = text.removeprefix(_BOM)
    if body.startswith("WEBVTT"):
        return "vtt"
    if body.lstrip()[:1] in ("[", "{"):
        try:
            json.loads(body)
        except ValueError:
            pass
        else:
            return "json"
    if _SRT_HEAD.match(body.replace("\r\n", "\n")):
        return "srt"
    return "text"


def parse_content(
    text: str,
    fmt: ContentFormat | None = None,
    *,
    rule: SplitRule | None = None,
    language: str = "en",
    filename: str | None = None,
) -> list[Segment]:
    """Parse ``text`` into segments indexed 0..n-1; never returns an empty list."""
    if fmt is not None and fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if len(text) > MAX_CONTENT_CHARS:
        raise InvalidInput(
            f"content is {len(text):,} characters; the limit is {MAX_CONTENT_CHARS:,}"
        )
    body = text.removeprefix(_BOM).replace("\r\n", "\n").replace("\r", "\n")
    fmt = fmt or detect_format(body, filename)
    if fmt == "srt":
        parts = _parse_srt(body)
    elif fmt == "vtt":
        parts = _parse_vtt(body)
    elif fmt == "json":
        parts = _parse_json(body)
    else:
        checked = split_rule(rule.sentences_per_segment, rule.target_chars) if rule else None
        parts = _parse_text(body, checked or SplitRule(), language)
    segments = [
        Segment(index=i, text=part_text, start_ms=start, end_ms=end)
        for i, (part_text, start, end) in enumerate(p for p in parts if p[0])
    ]
    if not segments:
        raise InvalidInput("content is empty: no segment has any text")
    if len(segments) > MAX_SEGMENTS:
        raise InvalidInput(f"content has {len(segments)} segments; the limit is {MAX_SEGMENTS}")
    return segments


def _one_line(text: str) -> str:
    """Cue text is broken for screen width, not meaning: rejoin it with single spaces."""
    return " ".join(text.split())


def _check_order(where: str, start: int | None, end: int | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidInput(f"{where}: ends at {end} ms, before it starts at {start} ms")


def _parse_srt(body: str) -> list[_Part]:
    try:
        subtitles = list(srt.parse(body))
    except (srt.SRTParseError, ValueError) as exc:
        raise InvalidInput(f"srt: could not parse: {exc}") from exc
    parts: list[_Part] = []
    for sub in subtitles:
        start = sub.start // _MS
        end = sub.end // _MS
        _check_order(f"srt: cue {sub.index}", start, end)
        parts.append((_one_line(_SRT_MARKUP.sub("", sub.content)), start, end))
    return parts


def _parse_vtt(body: str) -> list[_Part]:
    """Strict parsing, so a malformed cue is reported instead of silently dropped.

    The raw cue text is read: the library's ``text`` drops every ``<...>``, words too.
    Tags go before entities are decoded, so an escaped ``&lt;b&gt;`` stays as text.
    """
    try:
        captions = webvtt.from_buffer(io.StringIO(body), strict=True).captions
    except (MalformedFileError, MalformedCaptionError, ValueError) as exc:
        raise InvalidInput(f"vtt: could not parse: {exc}") from exc
    parts: list[_Part] = []
    for number, cue in enumerate(captions, start=1):
        start = cue.start_time.in_milliseconds()
        end = cue.end_time.in_milliseconds()
        name = f"{cue.identifier!r}" if cue.identifier else f"{number}"
        _check_order(f"vtt: cue {name}", start, end)
        text = html.unescape(_VTT_MARKUP.sub("", cue.raw_text))
        parts.append((_one_line(text), start, end))
    return parts


def _parse_json(body: str) -> list[_Part]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidInput(f"json: could not parse: {exc}") from exc
    if isinstance(data, dict) and "segments" in data:
        data = data["segments"]
    if not isinstance(data, list):
        raise InvalidInput("json: expected a list of segments or an object with a 'segments' list")
    return [_json_item(i, item) for i, item in enumerate(data)]


def _json_item(position: int, item: object) -> _Part:
    """One JSON item: a bare string, or an object with 'text' and optional times."""
    where = f"json: item {position}"
    if isinstance(item, str):
        return (item.strip(), None, None)
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: expected a string or an object with 'text'")
    obj = cast(dict[str, Any], item)
    text = obj.get("text")
    if not isinstance(text, str):
        raise InvalidInput(f"{where}: 'text' must be a non-empty string")
    start = _json_time(where, obj, "start")
    end = _json_time(where, obj, "end")
    _check_order(where, start, end)
    return (text.strip(), start, end)


def _json_time(where: str, obj: dict[str, Any], name: str) -> int | None:
    """Read ``name`` (seconds) or ``name_ms`` (milliseconds) as integer milliseconds."""
    seconds, millis = obj.get(name), obj.get(f"{name}_ms")
    if seconds is not None and millis is not None:
        raise InvalidInput(f"{where}: give '{name}' or '{name}_ms', not both")
    if seconds is not None:
        if not _is_number(seconds) or not math.isfinite(seconds):
            raise InvalidInput(f"{where}: '{name}' must be a number of seconds")
        key, value = name, round(float(seconds) * 1000)
    elif millis is not None:
        if isinstance(millis, bool) or not isinstance(millis, int):
            raise InvalidInput(f"{where}: '{name}_ms' must be a whole number of milliseconds")
        key, value = f"{name}_ms", millis
    else:
        return None
    if value < 0:
        raise InvalidInput(f"{where}: '{key}' must not be negative")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_text(body: str, rule: SplitRule, language: str) -> list[_Part]:
    """Sentences per paragraph, grouped; a blank line always closes a segment."""
    segmenter = pysbd.Segmenter(language=_sbd_language(language), clean=False)
    parts: list[_Part] = []
    for paragraph in _PARAGRAPH_BREAK.split(body):
        # Hard-wrapped lines are one flow of prose; pysbd would treat each newline as a break.
        flowed = _one_line(paragraph)
        if not flowed:
            continue
        sentences = [s for s in _sentences(segmenter, flowed) if s.strip()]
        parts.extend((group, None, None) for group in _group(sentences, rule))
    return parts


def _sentences(segmenter: pysbd.Segmenter, paragraph: str) -> list[str]:
    """Run pysbd window by window: its time grows with the square of the input length.

    The last sentence of a window may be cut by the window's edge, so it is read again at
    the start of the next window. A sentence longer than the window widens it, up to
    ``_MAX_WINDOW``; only a "sentence" longer than that (no punctuation at all) is cut.
    """
    sentences: list[str] = []
    pos, window = 0, _WINDOW
    while pos < len(paragraph):
        chunk = paragraph[pos : pos + window]
        found: list[str] = segmenter.segment(chunk)
        keep = found[:-1]
        taken = "".join(keep)
        if keep and pos + window < len(paragraph) and chunk.startswith(taken):
            sentences.extend(keep)
            pos, window = pos + len(taken), _WINDOW
        elif pos + window >= len(paragraph) or window >= _MAX_WINDOW:
            sentences.extend(found)
            pos += len(chunk)
        else:  # one sentence fills the window, or pysbd changed the text: read more at once
            window *= 2
    return sentences


def _sbd_language(language: str) -> str:
    """pysbd knows primary subtags only ("hi-IN" -> "hi"); unknown languages use English rules."""
    primary = re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower()
    return primary if primary in LANGUAGE_CODES else "en"


def _group(sentences: list[str], rule: SplitRule) -> Iterable[str]:
    """Join consecutive sentences, keeping pysbd's own spacing (some scripts use none)."""
    if rule.target_chars is None:
        step = rule.sentences_per_segment
        for i in range(0, len(sentences), step):
            yield "".join(sentences[i : i + step]).strip()
        return
    current = ""
    for sentence in sentences:
        candidate = current + sentence
        if current and len(candidate.strip()) > rule.target_chars:
            yield current.strip()
            candidate = sentence
        current = candidate
    if current.strip():
        yield current.strip()
