"""Audio formats: sniffed by magic number, decoded to 16 kHz mono, encoded for replies."""

from __future__ import annotations

import io
import math
import random
import struct
import tracemalloc
import wave

import av
import pytest

from personae.errors import InvalidInput, UnsupportedMediaType, ValidationFailed
from personae.providers.speech import AudioChunk
from personae.voice.audio import (
    StreamDecoder,
    decode_audio,
    resample,
    sniff_format,
)
from personae.voice.encoding import encode_audio

RATE = 16_000
AAC_PRIMING_MS = 140  # AAC adds an encoder delay and pads the last frame (1024 samples)


def tone(seconds: float, rate: int = RATE, freq: float = 440.0) -> AudioChunk:
    samples = int(seconds * rate)
    pcm = struct.pack(f"<{samples}h", *(int(8000 * math.sin(2 * math.pi * freq * i / rate))
                                        for i in range(samples)))
    return AudioChunk(pcm, rate)


def pyav_encode(chunk: AudioChunk, container: str, codec: str, rate: int | None = None,
                layout: str = "mono") -> bytes:
    """An audio file made by PyAV directly (independent of the code under test)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=rate or chunk.sample_rate, layout=layout)
        frame = av.AudioFrame(format="s16", layout="mono", samples=chunk.frames)
        frame.planes[0].update(chunk.pcm)
        frame.sample_rate = chunk.sample_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)
    return buffer.getvalue()


def wav_file(chunk: AudioChunk) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(chunk.sample_rate)
        writer.writeframes(chunk.pcm)
    return buffer.getvalue()


FORMATS = {  # sniffed name: (container, codec, encoder rate)
    "mp3": ("mp3", "libmp3lame", None),
    "ogg": ("ogg", "libopus", 48_000),
    "flac": ("flac", "flac", None),
    "webm": ("webm", "libopus", 48_000),
    "m4a": ("ipod", "aac", None),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_input_format_round_trips(name: str) -> None:
    container, codec, rate = FORMATS[name]
    data = pyav_encode(tone(1.5, 44_100), container, codec, rate, layout="stereo")
    assert sniff_format(data) == name
    decoded = decode_audio(data, max_seconds=10)
    assert decoded.sample_rate == RATE and decoded.channels == 1
    slack = AAC_PRIMING_MS if name == "m4a" else 30
    assert abs(decoded.duration_ms - 1500) <= slack


def test_wav_round_trips_at_any_rate() -> None:
    data = wav_file(tone(1.0, 22_050))
    assert sniff_format(data) == "wav"
    decoded = decode_audio(data, max_seconds=10)
    assert abs(decoded.duration_ms - 1000) <= 30
    assert decoded.sample_rate == RATE


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "flac", "aac"])
def test_every_reply_format_encodes_and_decodes(fmt: str) -> None:
    reply = tone(1.2, 22_050)
    data = encode_audio(reply, fmt)
    assert sniff_format(data) == {"opus": "ogg"}.get(fmt, fmt)
    with av.open(io.BytesIO(data)) as container:
        seconds = sum(f.samples / f.sample_rate for f in container.decode(audio=0))
    slack = AAC_PRIMING_MS / 1000 if fmt == "aac" else 0.03
    assert abs(seconds - 1.2) <= slack


def test_pcm_output_is_the_raw_samples() -> None:
    reply = tone(0.1)
    assert encode_audio(reply, "pcm") == reply.pcm


def test_unknown_output_format_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown audio format"):
        encode_audio(tone(0.1), "wma")


def test_resample_keeps_the_duration() -> None:
    out = resample(tone(1.0, 22_050), 16_000)
    assert out.sample_rate == 16_000
    assert abs(out.duration_ms - 1000) <= 30
    assert resample(out, 16_000) is out


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + bytes(64),
    b"hello, this is plainly text and not audio at all",
    b"%PDF-1.4 ...",
])
def test_not_audio_is_unsupported_media_type(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType, match="expected WAV, FLAC, MP3") as caught:
        decode_audio(data, max_seconds=10)
    assert caught.value.status == 415


def test_empty_audio_is_not_audio() -> None:
    with pytest.raises(UnsupportedMediaType,
                       match="could not be decoded: the file is empty") as caught:
        decode_audio(b"", max_seconds=10)
    assert caught.value.status == 415


@pytest.mark.parametrize("data", [
    b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk",
    b"fLaC" + bytes(range(256)) * 4,
    b"OggS" + b"\x00" * 200,
    b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 100,
])
def test_corrupt_audio_is_not_audio(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType, match="could not be decoded") as caught:
        decode_audio(data, max_seconds=10)
    assert caught.value.status == 415
    assert_plain(caught.value.message)


def assert_plain(message: str) -> None:
    """A decoding failure in plain words: no FFmpeg error number or internal name."""
    assert message.startswith("the audio could not be decoded: "), message
    assert "Errno" not in message and "<none>" not in message, message
    assert "expected WAV, FLAC, MP3" in message, message


def test_raw_aac_is_sniffed_and_decoded() -> None:
    """ADTS, as ``/v1/audio/speech`` answers ``aac``: sync FFF1 (MPEG-4) or FFF9 (MPEG-2)."""
    data = encode_audio(tone(1.0), "aac")
    assert data[:2] == b"\xff\xf1" and sniff_format(data) == "aac"
    assert sniff_format(b"\xff\xf9" + data[2:]) == "aac"
    assert sniff_format(b"\xff\xfb\x90\x00") == "mp3"  # an MPEG layer 3 frame stays mp3
    decoded = decode_audio(data, max_seconds=10)
    assert abs(decoded.duration_ms - 1000) <= AAC_PRIMING_MS


@pytest.mark.parametrize("name", ["flac", "ogg", "webm", "m4a"])
def test_truncated_audio_is_invalid_or_shorter(name: str) -> None:
    container, codec, rate = FORMATS[name]
    data = pyav_encode(tone(1.0), container, codec, rate)
    head = data[:40]
    with pytest.raises(InvalidInput, match="could not be decoded"):
        decode_audio(head, max_seconds=10)


def test_a_file_with_no_audio_stream_is_invalid() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm") as output:
        stream = output.add_stream("libvpx", rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame(32, 32, "yuv420p")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    with pytest.raises(InvalidInput, match="no audio stream"):
        decode_audio(buffer.getvalue(), max_seconds=10)


def test_too_long_is_refused_without_decoding_it_whole() -> None:
    """Ten minutes of FLAC (19 MB once decoded) refused at 2 s with little memory."""
    silence = AudioChunk(bytes(8_000 * 2 * 600), 8_000)
    data = pyav_encode(silence, "flac", "flac")
    tracemalloc.start()
    try:
        with pytest.raises(ValidationFailed, match="longer than the 2 s limit") as caught:
            decode_audio(data, max_seconds=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.status == 422
    assert peak < 2_000_000 + 3 * len(data)


def test_stream_decoder_decodes_webm_opus_fed_in_random_pieces() -> None:
    data = pyav_encode(tone(2.0, 48_000), "webm", "libopus", 48_000)
    decoder, pcm, pieces = StreamDecoder("webm"), b"", random.Random(13)
    position = 0
    while position < len(data):
        size = pieces.randint(1, 700)
        out = decoder.feed(data[position:position + size])
        pcm += out.pcm if out else b""
        position += size
    last = decoder.close()
    pcm += last.pcm if last else b""
    assert abs(len(pcm) / 2 / RATE - 2.0) <= 0.03


def test_stream_decoder_ogg_opus() -> None:
    data = pyav_encode(tone(1.0, 48_000), "ogg", "libopus", 48_000)
    decoder = StreamDecoder("ogg")
    chunks = [decoder.feed(data[i:i + 333]) for i in range(0, len(data), 333)]
    chunks.append(decoder.close())
    pcm = b"".join(c.pcm for c in chunks if c)
    assert abs(len(pcm) / 2 / RATE - 1.0) <= 0.03


def test_stream_decoder_reports_garbage_as_invalid() -> None:
    decoder = StreamDecoder("webm")

    def feed_then_close() -> None:  # the error shows on whichever comes after it
        decoder.feed(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 20)
        decoder.close()

    try:
        with pytest.raises(InvalidInput, match="could not be decoded") as caught:
            feed_then_close()
    finally:
        decoder.close()
    assert_plain(caught.value.message)
    assert "invalid data" in caught.value.message
    assert decoder._thread is not None and not decoder._thread.is_alive()


def test_stream_decoder_pcm_at_another_rate_and_odd_splits() -> None:
    source = tone(1.0, 48_000)
    decoder = StreamDecoder("pcm16", sample_rate=48_000)
    outs = [decoder.feed(source.pcm[i:i + 1001]) for i in range(0, len(source.pcm), 1001)]
    outs.append(decoder.close())
    pcm = b"".join(o.pcm for o in outs if o)
    assert abs(len(pcm) / 2 / RATE - 1.0) <= 0.03


def test_stream_decoder_pcm16_at_16k_passes_through() -> None:
    decoder = StreamDecoder()
    out = decoder.feed(b"\x01\x00\x02")
    assert out is not None and out.pcm == b"\x01\x00"
    again = decoder.feed(b"\x00")
    assert again is not None and again.pcm == b"\x02\x00"
    assert decoder.close() is None


def test_stream_decoder_refuses_unknown_formats() -> None:
    with pytest.raises(InvalidInput, match="unknown input format"):
        StreamDecoder("mp4")


def test_chunk_resampler_keeps_a_stream_continuous() -> None:
    from personae.voice.audio import ChunkResampler
    source = tone(1.0, 16_000)
    resampler = ChunkResampler(22_050)
    pieces = [resampler.push(AudioChunk(source.pcm[i:i + 3200], 16_000))
              for i in range(0, len(source.pcm), 3200)]
    pcm = b"".join(p.pcm for p in pieces) + resampler.flush().pcm
    assert abs(len(pcm) / 2 / 22_050 - 1.0) <= 0.01
    same = ChunkResampler(16_000)
    assert same.push(source) is source and same.flush().pcm == b""
