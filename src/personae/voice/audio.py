"""Audio in: recognise a file's format, decode it, resample (replies are encoded by
:mod:`.encoding`).

Everything the pipeline handles is mono 16-bit PCM (:class:`AudioChunk`); this module
and :mod:`.encoding` are the places that talk to PyAV (FFmpeg), which faster-whisper
already brings in ``personae[voice]``. Formats are told by their magic number, never
by a file name or a declared type, and decoding stops as soon as a duration limit is
passed, so a huge upload is refused without being decoded whole.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from personae.errors import (
    FieldIssue,
    InvalidInput,
    ProviderUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from personae.providers.speech import RECOGNITION_RATE, SAMPLE_WIDTH, AudioChunk

if TYPE_CHECKING:
    import av as av_module

AudioFormat = Literal["wav", "flac", "mp3", "ogg", "webm", "m4a", "aac"]
OutputFormat = Literal["wav", "pcm", "mp3", "opus", "flac", "aac"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("wav", "pcm", "mp3", "opus", "flac", "aac")
EXPECTED = "expected WAV, FLAC, MP3, OGG/Opus, WebM, M4A or AAC (ADTS) audio"

CATCH_UP_SECONDS = 0.02  # how long ``feed`` lets the decoder thread catch up
READ_BYTES = 1024  # small reads, so a live stream is decoded as it arrives
log = logging.getLogger(__name__)


def _av() -> Any:
    """PyAV, imported on first use so the rest of Personae runs without the extra."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - the voice extra is not installed
        raise ProviderUnavailable(
            "audio", "audio needs PyAV: pip install 'personae[voice]'") from exc
    return av


def _is_mpeg_frame(data: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a valid version and layer (not ADTS)."""
    if len(data) < 2 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    version, layer = (data[1] >> 3) & 0b11, (data[1] >> 1) & 0b11
    return version != 0b01 and layer != 0b00


def _is_adts_frame(data: bytes) -> bool:
    """A raw AAC (ADTS) frame header: 12 sync bits, then layer 0 (``FFF1``, ``FFF9``)."""
    return len(data) >= 2 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0


def sniff_format(data: bytes) -> AudioFormat | None:
    """The audio container ``data`` is in, by its magic number; None when unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if data[4:8] == b"ftyp":
        return "m4a"
    if data[:3] == b"ID3" or _is_mpeg_frame(data):
        return "mp3"
    if _is_adts_frame(data):
        return "aac"
    return None


def _undecodable(reason: str) -> UnsupportedMediaType:
    """Bytes that are not audio Personae reads (empty, corrupt, cut short): 415."""
    return UnsupportedMediaType(f"the audio could not be decoded: {reason} ({EXPECTED})")


def _decoder_failed(exc: BaseException) -> UnsupportedMediaType:
    """A decoder's failure in plain words; FFmpeg's own text (error numbers, its
    internal names) goes to the debug log, not to the client."""
    log.debug("audio decoding failed: %r", exc)
    return _undecodable("the file ends too early" if isinstance(exc, EOFError)
                        else "invalid data")


def _too_long(max_seconds: float) -> ValidationFailed:
    """Audio past the duration bound: 422 on its field."""
    return ValidationFailed([FieldIssue("file", f"the audio is longer than the "
                                                f"{max_seconds:g} s limit")])


def _frame_bytes(frame: av_module.AudioFrame) -> bytes:
    """A packed s16 mono frame's samples (planes may be padded past the samples)."""
    return bytes(frame.planes[0])[: frame.samples * SAMPLE_WIDTH]


def _to_recognition_rate() -> av_module.AudioResampler:
    resampler: av_module.AudioResampler = _av().AudioResampler(
        format="s16", layout="mono", rate=RECOGNITION_RATE)
    return resampler


def _decoded_pcm(container: av_module.container.InputContainer,
                 max_samples: float) -> Iterator[bytes]:
    """16 kHz mono PCM pieces of the first audio stream, stopping past ``max_samples``."""
    if not container.streams.audio:
        raise _undecodable("the file has no audio stream")
    resampler, produced = _to_recognition_rate(), 0
    for frame in container.decode(container.streams.audio[0]):
        for out in resampler.resample(frame):
            produced += out.samples
            if produced > max_samples:
                raise _too_long(max_samples / RECOGNITION_RATE)
            yield _frame_bytes(out)
    for out in resampler.resample(None):
        produced += out.samples
        if produced > max_samples:
            raise _too_long(max_samples / RECOGNITION_RATE)
        yield _frame_bytes(out)


def decode_audio(data: bytes, *, max_seconds: float) -> AudioChunk:
    """Any supported file as mono 16 kHz PCM16.

    Raises UnsupportedMediaType (415) for a format that is not audio Personae takes,
    InvalidInput (400) for empty, corrupt or truncated audio, a file with no audio
    stream, or one longer than ``max_seconds`` (found without decoding the rest).
    """
    if not data:
        raise _undecodable("the file is empty")
    if sniff_format(data) is None:
        raise UnsupportedMediaType(f"unsupported audio format: {EXPECTED}")
    av = _av()
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            pcm = b"".join(_decoded_pcm(container, max_seconds * RECOGNITION_RATE))
    except (av.FFmpegError, EOFError, ValueError, IndexError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise _decoder_failed(exc) from exc
    if not pcm:
        raise _undecodable("no audio samples in the file")
    return AudioChunk(pcm, RECOGNITION_RATE)


def _pcm_frame(chunk: AudioChunk) -> av_module.AudioFrame:
    av = _av()
    layout = "mono" if chunk.channels == 1 else "stereo"
    frame: av_module.AudioFrame = av.AudioFrame(format="s16", layout=layout,
                                                samples=chunk.frames)
    frame.planes[0].update(chunk.pcm)
    frame.sample_rate = chunk.sample_rate
    return frame


def resample(chunk: AudioChunk, rate: int) -> AudioChunk:
    """``chunk`` as mono PCM16 at ``rate`` (mono or stereo in)."""
    if chunk.channels == 1 and chunk.sample_rate == rate:
        return chunk
    if not chunk.pcm:
        return AudioChunk(b"", rate)
    av = _av()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    frames = [*resampler.resample(_pcm_frame(chunk)), *resampler.resample(None)]
    return AudioChunk(b"".join(_frame_bytes(f) for f in frames), rate)


class _FedFile(io.RawIOBase):
    """A read-only file whose bytes arrive from another thread; reads block until fed."""

    def __init__(self) -> None:
        super().__init__()
        self._pieces: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending = b""
        self._ended = False
        self.idle = threading.Event()  # the reader has used up what it was given

    def readable(self) -> bool:
        return True

    def put(self, data: bytes | None) -> None:
        """More bytes, or None for the end of the stream."""
        self.idle.clear()
        self._pieces.put(data)

    def read(self, size: int = -1) -> bytes:
        while not self._pending and not self._ended:
            if self._pieces.empty():
                self.idle.set()
            piece = self._pieces.get()
            if piece is None:
                self._ended = True
            else:
                self._pending = piece
        size = len(self._pending) if size is None or size < 0 else size
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class StreamDecoder:
    """Decodes a live input stream to 16 kHz mono PCM16 as its bytes arrive.

    ``fmt`` "pcm16" is raw PCM16 mono at ``sample_rate``; "webm" and "ogg" are a
    browser's MediaRecorder Opus stream, cut anywhere. Containers are demuxed by PyAV
    on a thread reading a queue-fed file, so ``feed`` never blocks on the decoder:
    it returns what has become decodable so far (None when nothing has).
    """

    def __init__(self, fmt: str = "pcm16", *, sample_rate: int = RECOGNITION_RATE) -> None:
        if fmt not in ("pcm16", "webm", "ogg"):
            raise InvalidInput(f"unknown input format {fmt!r}: expected pcm16, webm or ogg")
        if sample_rate < 8_000 or sample_rate > 192_000:
            raise InvalidInput(f"sample_rate {sample_rate} is out of range (8000-192000)")
        self.format, self.sample_rate = fmt, sample_rate
        self._odd = b""
        self._resampler = _to_recognition_rate() if sample_rate != RECOGNITION_RATE else None
        self._lock = threading.Lock()
        self._ready: list[bytes] = []
        self._error: Exception | None = None
        self._file: _FedFile | None = None
        self._thread: threading.Thread | None = None
        if fmt != "pcm16":
            self._file = _FedFile()
            self._thread = threading.Thread(target=self._demux, daemon=True,
                                            name=f"voice-decode-{fmt}")
            self._thread.start()

    def feed(self, data: bytes) -> AudioChunk | None:
        """Add input bytes; the 16 kHz audio decoded since the last call, if any."""
        if self._file is None:
            return self._pcm(data)
        self._file.put(bytes(data))
        self._file.idle.wait(CATCH_UP_SECONDS)  # decoding a piece takes well under this
        return self._take()

    def close(self) -> AudioChunk | None:
        """End the stream; the last decoded audio. Waits briefly for the decoder thread."""
        if self._file is None:
            return self._flush_pcm()
        self._file.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self._take()

    def _pcm(self, data: bytes) -> AudioChunk | None:
        data, self._odd = self._odd + data, b""
        if len(data) % SAMPLE_WIDTH:
            data, self._odd = data[:-1], data[-1:]
        if not data:
            return None
        if self._resampler is None:
            return AudioChunk(data, RECOGNITION_RATE)
        chunk = AudioChunk(data, self.sample_rate)
        out = b"".join(_frame_bytes(f) for f in self._resampler.resample(_pcm_frame(chunk)))
        return AudioChunk(out, RECOGNITION_RATE) if out else None

    def _flush_pcm(self) -> AudioChunk | None:
        if self._resampler is None:
            return None
        out = b"".join(_frame_bytes(f) for f in self._resampler.resample(None))
        return AudioChunk(out, RECOGNITION_RATE) if out else None

    def _take(self) -> AudioChunk | None:
        with self._lock:
            error, pieces, self._ready = self._error, self._ready, []
            self._error = None
        if error is not None:
            if isinstance(error, InvalidInput):
                raise error
            raise _decoder_failed(error)
        pcm = b"".join(pieces)
        return AudioChunk(pcm, RECOGNITION_RATE) if pcm else None

    def _demux(self) -> None:
        av = _av()
        assert self._file is not None
        try:
            container = av.open(self._file, mode="r", format=_DEMUXERS[self.format],
                                buffer_size=READ_BYTES,
                                options={"probesize": "4096", "analyzeduration": "0"})
            with container:
                for pcm in _decoded_pcm(container, float("inf")):
                    with self._lock:
                        self._ready.append(pcm)
        except Exception as exc:  # reported to the caller on its next feed
            with self._lock:
                self._error = exc
        finally:
            self._file.idle.set()
            self._drain()

    def _drain(self) -> None:
        """Swallow whatever is still fed after the decoder stopped, until the end."""
        assert self._file is not None
        while self._file.read(65_536):
            pass


_DEMUXERS = {"webm": "matroska", "ogg": "ogg"}


class ChunkResampler:
    """Resamples one continuous stream (a sentence's audio) chunk by chunk to ``rate``
    mono, keeping the filter's state across chunks so the joins are seamless."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler: av_module.AudioResampler | None = None

    def push(self, chunk: AudioChunk) -> AudioChunk:
        if self._resampler is None and chunk.sample_rate == self.rate and chunk.channels == 1:
            return chunk
        if not chunk.pcm:
            return AudioChunk(b"", self.rate)
        if self._resampler is None:
            self._resampler = _av().AudioResampler(format="s16", layout="mono", rate=self.rate)
        frames = self._resampler.resample(_pcm_frame(chunk))
        return AudioChunk(b"".join(_frame_bytes(f) for f in frames), self.rate)

    def flush(self) -> AudioChunk:
        """What the filter still holds, at the end of the stream."""
        if self._resampler is None:
            return AudioChunk(b"", self.rate)
        frames = self._resampler.resample(None)
        return AudioChunk(b"".join(_frame_bytes(f) for f in frames), self.rate)
