"""Reply audio as files: a whole clip at once, or a stream encoded as it is spoken.

:class:`StreamEncoder` writes one container piece by piece and hands back whatever
the container has written so far, so a long text's audio can be sent while the rest
is still being synthesised. Containers are written to a sink that cannot seek, which
makes every muxer write its file front to back (nothing is patched in at the end): a
WAV's sizes are the "unknown length" 0xFFFFFFFF that streaming WAV writers use and
FFmpeg, libsndfile and Python's ``wave`` all read; FLAC's header leaves the total
sample count unknown; Ogg pages are kept short so audio is not held back for a second.
Encoding is CPU work: call ``push`` and ``finish`` off the event loop.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from personae.errors import InvalidInput
from personae.providers.speech import SAMPLE_WIDTH, AudioChunk, wav_bytes
from personae.voice.audio import OUTPUT_FORMATS, ChunkResampler, _av, _pcm_frame

# (container, codec, sample rate or None to keep the input's) for each compressed format.
_ENCODERS: dict[str, tuple[str, str, int | None]] = {
    "mp3": ("mp3", "libmp3lame", None),
    "opus": ("ogg", "libopus", 48_000),
    "flac": ("flac", "flac", None),
    "aac": ("adts", "aac", None),
}
_OPUS_RATES = frozenset({8_000, 12_000, 16_000, 24_000, 48_000})
_MUXER_OPTIONS = {"ogg": {"page_duration": "100000"}}  # µs of audio per Ogg page
UNKNOWN_SIZE = 0xFFFFFFFF


def streaming_wav_header(rate: int, channels: int = 1) -> bytes:
    """A PCM16 WAV header whose RIFF and data sizes say "unknown": the data runs to
    the end of the file."""
    block = channels * SAMPLE_WIDTH
    return b"".join((b"RIFF", struct.pack("<I", UNKNOWN_SIZE), b"WAVE", b"fmt ",
                     struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block,
                                 SAMPLE_WIDTH * 8),
                     b"data", struct.pack("<I", UNKNOWN_SIZE)))


def _file_rate(fmt: str, rate: int) -> int:
    """The sample rate a ``fmt`` file of ``rate`` audio is written at."""
    fixed = _ENCODERS[fmt][2] if fmt in _ENCODERS else None
    if fmt == "opus" and rate in _OPUS_RATES:
        return rate
    return fixed or rate


class _Sink:
    """Where a muxer writes: it collects bytes and cannot seek."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class StreamEncoder:
    """One mono audio file in ``fmt`` (wav, pcm, mp3, opus, flac, aac), written as its
    audio arrives: ``push`` a chunk (any rate: it is resampled to the file's, which is
    ``rate`` except where the codec needs another) and get the bytes written so far;
    ``finish`` once for the rest. The pieces joined are one valid file.

    ``whole_file`` writes to a seekable buffer instead and hands everything over at
    ``finish``: the muxer then patches in what it learns at the end (an MP3's encoder
    delay, so decoders trim it; FLAC's sample count)."""

    def __init__(self, fmt: str, rate: int, *, whole_file: bool = False) -> None:
        if fmt not in OUTPUT_FORMATS:
            raise InvalidInput(f"unknown audio format {fmt!r}: expected one of "
                               f"{', '.join(OUTPUT_FORMATS)}", {"param": "format"})
        self.format = fmt
        self.rate = _file_rate(fmt, rate)
        self._resampler = ChunkResampler(self.rate)
        self._header = streaming_wav_header(self.rate) if fmt == "wav" else b""
        self._sink: _Sink | io.BytesIO = io.BytesIO() if whole_file else _Sink()
        self._output: Any = None
        self._stream: Any = None
        if fmt in _ENCODERS:
            container, codec, _ = _ENCODERS[fmt]
            self._output = _av().open(self._sink, mode="w", format=container,
                                      options=_MUXER_OPTIONS.get(container, {}))
            self._stream = self._output.add_stream(codec, rate=self.rate, layout="mono")

    def push(self, chunk: AudioChunk) -> bytes:
        """Encode ``chunk``; the file's bytes written since the last call."""
        return self._encode(self._resampler.push(chunk))

    def finish(self) -> bytes:
        """The end of the file: what the resampler, codec and muxer still hold."""
        out = self._encode(self._resampler.flush())
        if self._output is not None:
            for packet in self._stream.encode(None):
                self._output.mux(packet)
            self._output.close()
            out += self._written()
            if isinstance(self._sink, io.BytesIO):
                out = self._sink.getvalue()
        return out

    def _encode(self, chunk: AudioChunk) -> bytes:
        head, self._header = self._header, b""
        if self._output is None:  # wav, pcm: the samples are the data
            return head + chunk.pcm
        if chunk.pcm:
            for packet in self._stream.encode(_pcm_frame(chunk)):
                self._output.mux(packet)
        return self._written()

    def _written(self) -> bytes:
        return self._sink.take() if isinstance(self._sink, _Sink) else b""


def encode_audio(chunk: AudioChunk, fmt: str) -> bytes:
    """``chunk`` as a file in ``fmt``: wav, pcm (raw PCM16), mp3, opus (Ogg), flac, aac.

    A whole clip's WAV states its real length (its size is known)."""
    if fmt == "wav":
        return wav_bytes(ChunkResampler(chunk.sample_rate).push(chunk))
    encoder = StreamEncoder(fmt, chunk.sample_rate, whole_file=True)
    return encoder.push(chunk) + encoder.finish()
