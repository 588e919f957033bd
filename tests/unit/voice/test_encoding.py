"""Reply audio written as it is spoken: every format, piece by piece, one valid file."""

from __future__ import annotations

import io
import math
import struct
import wave

import av
import pytest
import soundfile

from personae.errors import InvalidInput
from personae.providers.speech import AudioChunk
from personae.voice.encoding import StreamEncoder, encode_audio
from personae.voice.speaking import sanitised

PRIMING_MS = {"mp3": 80, "aac": 140, "opus": 30}  # encoder delay and last-frame padding


def tone(seconds: float, rate: int = 22_050, start: int = 0) -> AudioChunk:
    samples = int(seconds * rate)
    pcm = struct.pack(f"<{samples}h", *(int(8000 * math.sin(2 * math.pi * 220 * i / rate))
                                        for i in range(start, start + samples)))
    return AudioChunk(pcm, rate)


def decoded_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        return sum(f.samples / f.sample_rate for f in container.decode(audio=0))


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav"])
def test_each_piece_is_written_before_the_next_is_spoken(fmt: str) -> None:
    encoder = StreamEncoder(fmt, 22_050)
    written = [encoder.push(tone(0.8)) for _ in range(3)]
    assert all(written), [len(piece) for piece in written]  # nothing held back whole
    data = b"".join(written) + encoder.finish()
    assert abs(decoded_seconds(data) - 2.4) * 1000 <= PRIMING_MS.get(fmt, 5)


def test_a_streamed_wav_says_its_length_is_unknown_and_every_reader_reads_it() -> None:
    encoder = StreamEncoder("wav", 22_050)
    data = encoder.push(tone(0.5)) + encoder.push(tone(0.5)) + encoder.finish()
    assert data[4:8] == data[40:44] == b"\xff\xff\xff\xff"
    assert decoded_seconds(data) == pytest.approx(1.0)
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    assert rate == 22_050 and len(samples) == 22_050
    with wave.open(io.BytesIO(data)) as reader:
        assert len(reader.readframes(10**7)) == 2 * 22_050


def test_pcm_is_the_raw_samples_at_the_asked_rate() -> None:
    encoder = StreamEncoder("pcm", 24_000)
    data = encoder.push(tone(0.5)) + encoder.push(tone(0.5)) + encoder.finish()
    assert abs(len(data) / 2 - 24_000) <= 48  # resampled across the join, not per piece
    same_rate = StreamEncoder("pcm", 22_050)
    piece = tone(0.1)
    assert same_rate.push(piece) + same_rate.finish() == piece.pcm


def test_opus_is_written_at_a_rate_opus_takes() -> None:
    assert StreamEncoder("opus", 22_050).rate == 48_000
    assert StreamEncoder("opus", 24_000).rate == 24_000


def test_a_whole_clip_states_its_real_length() -> None:
    data = encode_audio(tone(0.5), "wav")
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getnframes() == 11_025
    mp3 = encode_audio(tone(1.2), "mp3")  # the encoder delay is recorded, so trimmed
    assert abs(decoded_seconds(mp3) - 1.2) <= 0.03


def test_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown audio format"):
        StreamEncoder("wma", 16_000)


def test_control_and_format_characters_are_taken_out_of_spoken_text() -> None:
    assert sanitised("Hello\x00 wor\u200bld\u202e!\x1b") == "Hello world!"
    assert sanitised("one\rtwo\x0bthree\x85four") == "one two three four"
    assert sanitised("line\nbreak\tand tab") == "line\nbreak\tand tab"
    assert sanitised("नमस्ते, दुनिया । ok 😀 naïve") == "नमस्ते, दुनिया । ok 😀 naïve"
