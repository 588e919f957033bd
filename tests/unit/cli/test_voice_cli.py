"""``personae say`` and ``personae voice``, run in process on an initialised data folder
with the real offline voices (Piper, espeak-ng) and recogniser (Whisper tiny.en); the
model is the scripted one, which echoes what it heard."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from personae.cli.main import app
from personae.voice.audio import decode_audio, sniff_format
from personae.voice.encoding import encode_audio
from tests.support.speech import concat, espeak_audio, silence

Invoke = Callable[..., Result]
CLEARED = ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG", "PERSONAE_HOST", "PERSONAE_PORT",
           "PERSONAE_STT_PROVIDER", "PERSONAE_TTS_PROVIDER")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PERSONAE_PROVIDERS", json.dumps({"llm": {"kind": "scripted"}}))
    monkeypatch.setenv("PERSONAE_DEFAULT_PROVIDER", "llm")
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    initialised = invoke("init")
    assert initialised.exit_code == 0, initialised.output
    return invoke


def test_say_speaks_in_the_personas_voice_in_the_format_of_the_extension(
        cli: Invoke, tmp_path: Path) -> None:
    wav = tmp_path / "reply.wav"
    result = cli("say", "mohit", "Good evening, the stars are kind tonight.", "-o", str(wav))
    assert result.exit_code == 0, result.output
    assert "piper en_US-joe-medium" in result.output
    assert decode_audio(wav.read_bytes(), max_seconds=60).duration_ms > 1000
    mp3 = tmp_path / "tina.mp3"
    result = cli("say", "tina-kulkarni", "नमस्ते, आप कैसे हैं?", "-o", str(mp3))
    assert result.exit_code == 0, result.output
    assert "espeak hi" in result.output  # no offline neural Hindi voice: espeak-ng's
    assert sniff_format(mp3.read_bytes()) == "mp3"


def test_say_refuses_an_extension_it_cannot_write(cli: Invoke, tmp_path: Path) -> None:
    result = cli("say", "mohit", "Hello.", "-o", str(tmp_path / "reply.docx"))
    assert result.exit_code == 2 and ".wav" in result.output
    assert not (tmp_path / "reply.docx").exists()


def test_voice_answers_a_recorded_question_and_writes_the_spoken_reply(
        cli: Invoke, tmp_path: Path) -> None:
    question = tmp_path / "question.wav"
    question.write_bytes(encode_audio(concat(
        silence(200), espeak_audio("Please tell me about the moon."), silence(200)), "wav"))
    reply = tmp_path / "reply.flac"
    result = cli("voice", "mohit", "--in", str(question), "-o", str(reply))
    assert result.exit_code == 0, result.output
    heard = result.output.lower()
    assert "you> " in heard and "moon" in heard
    assert "mohit> " in heard  # the scripted model echoes the transcript
    assert sniff_format(reply.read_bytes()) == "flac"
    assert decode_audio(reply.read_bytes(), max_seconds=60).duration_ms > 1000


def test_say_refuses_text_with_nothing_to_say(cli: Invoke, tmp_path: Path) -> None:
    for text in ("...!!!???", "🙂🙂🙂"):
        out = tmp_path / "x.wav"
        result = cli("say", "python-tutor", text, "-o", str(out))
        assert result.exit_code == 2, result.output
        assert "error: TEXT has nothing to say: no letters or digits" in result.output
        assert not out.exists()


def test_say_help_lists_every_extension_it_accepts(cli: Invoke) -> None:
    result = cli("say", "--help")
    assert result.exit_code == 0
    for extension in (".wav", ".mp3", ".ogg", ".opus", ".flac", ".aac", ".pcm", ".raw"):
        assert extension in result.output, extension


def test_voice_reports_a_recording_with_no_speech(cli: Invoke, tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(encode_audio(silence(1500), "wav"))
    result = cli("voice", "mohit", "--in", str(quiet))
    assert result.exit_code == 1
    assert "error: no speech found in the audio (quiet.wav)" in result.output
    assert "invalid persona" not in result.output


def test_voice_says_why_a_persona_cannot_be_heard(cli: Invoke, tmp_path: Path) -> None:
    question = tmp_path / "q.wav"
    question.write_bytes(encode_audio(concat(
        silence(200), espeak_audio("Please tell me about the moon."), silence(200)), "wav"))
    result = cli("voice", "tina-kulkarni", "--in", str(question))
    assert result.exit_code == 1
    assert "error: tina-kulkarni: no speech recogniser for Hindi (hi) is installed" \
        in result.output
    assert "invalid persona" not in result.output and "warning:" not in result.output


def test_voice_without_a_microphone_says_what_is_missing(
        cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed
    result = cli("voice", "mohit")
    assert result.exit_code == 1
    assert "sounddevice" in result.output and "--in FILE" in result.output
