"""``personae say`` and ``personae voice``: a persona's voice in the terminal, offline.

Both run the voice service in this process (like ``personae chat``), as the local
admin. ``say`` speaks text into a file; ``voice --in FILE`` is one spoken turn from a
recording in a new session; ``voice`` alone is a call through the microphone, when
the ``sounddevice`` package and an input device are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.text import Text

from personae.auth.principal import Principal
from personae.cli import output
from personae.cli.session import as_admin, read_input
from personae.errors import FieldIssue, PersonaeError, ValidationFailed
from personae.runtime import Runtime
from personae.voice.audio import decode_audio
from personae.voice.encoding import encode_audio
from personae.voice.service import SpokenReply, SpokenText

FORMATS = {".wav": "wav", ".mp3": "mp3", ".ogg": "opus", ".opus": "opus", ".flac": "flac",
           ".aac": "aac", ".pcm": "pcm", ".raw": "pcm"}
MICROPHONE_RATE = 16_000
MICROPHONE_BLOCK = 512  # samples per frame sent to the call (32 ms)
USAGE_ERROR = 2
T = TypeVar("T")


def audio_format(path: Path) -> str:
    """The reply format a file name asks for, by its extension."""
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise typer.BadParameter(f"{path}: the extension must be one of "
                                 f"{', '.join(sorted(FORMATS))}")
    return found


def _issue_text(issue: FieldIssue, persona: str, recording: Path | None) -> str:
    if issue.path == "file" and recording is not None:
        return f"{issue.message} ({recording.name})"
    return f"{persona}: {issue.message}" if not issue.path else str(issue)


def failed(exc: PersonaeError, persona: str, recording: Path | None = None) -> NoReturn:
    """Report what failed and exit 1. A voice command's 422s are about the recording or
    the persona's voice, not the persona's definition, so they are not shown as the
    CLI shows a persona file's schema errors ("invalid persona")."""
    if isinstance(exc, ValidationFailed) and exc.issues:
        for issue in exc.issues:
            output.error(_issue_text(issue, persona, recording))
    elif exc.details.get("param") == "input":  # the text itself: bad usage
        output.error(exc.message.replace("input: ", "TEXT ", 1))
        raise typer.Exit(USAGE_ERROR)
    else:
        output.report_error(exc)
    raise typer.Exit(1)


def _run(ctx: typer.Context, work: Callable[[Runtime, Principal], Awaitable[T]],
         persona: str, recording: Path | None = None) -> T:
    try:
        return as_admin(ctx, work)
    except PersonaeError as exc:
        failed(exc, persona, recording)


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner on stderr while a slow step (loading a model) runs."""
    with output.err_console.status(message, spinner="dots"):
        yield


def say(ctx: typer.Context,
        persona: str = typer.Argument(..., help="persona id: its voice speaks"),
        text: str = typer.Argument(..., help="what to say"),
        out: Path = typer.Option(Path("reply.wav"), "-o", "--output",
                                 help="audio file to write; its extension picks the format "
                                      f"({' '.join(FORMATS)})")) -> None:
    """Speak TEXT in PERSONA's voice into a file."""
    fmt = audio_format(out)

    async def work(runtime: Runtime, principal: Principal) -> SpokenText:
        with progress("Loading the voice..."):
            return await runtime.voice.speak_as(principal, text, persona, fmt=fmt)

    spoken = _run(ctx, work, persona)
    out.write_bytes(spoken.audio)
    output.say(f"Wrote {out} ({spoken.audio_ms / 1000:.1f} s, {spoken.synthesiser} "
               f"{spoken.voice_id or ''})".rstrip())


def voice(ctx: typer.Context,
          persona: str = typer.Argument(..., help="persona id, e.g. mohit"),
          recording: Path | None = typer.Option(
              None, "--in", help="a recorded question (WAV, FLAC, MP3, OGG, WebM, M4A, "
                                 "AAC); without it, talk through the microphone"),
          out: Path | None = typer.Option(None, "-o", "--output",
                                          help="write the spoken reply here")) -> None:
    """One spoken turn from a file (--in), or a voice call through the microphone."""
    fmt = audio_format(out) if out is not None else None
    if recording is None:
        problem = microphone_problem()
        if problem is not None:
            output.error(f"no microphone call: {problem}; use --in FILE for one turn "
                         "from a recording")
            raise typer.Exit(1)
        _run(ctx, lambda runtime, principal: _call(runtime, principal, persona), persona)
        return
    data, _ = read_input(str(recording))

    async def work(runtime: Runtime, principal: Principal) -> tuple[SpokenReply, str]:
        session, _ = await runtime.conversations.open(principal, persona,
                                                      {"channel": "cli-voice"})
        with progress("Listening and answering (loading the speech models)..."):
            spoken = await runtime.voice.respond(principal, session.id, data,
                                                 recording.name)
        name = (await runtime.personas.get(principal, persona)).record.definition.shown_name
        return spoken, name

    spoken, name = _run(ctx, work, persona, recording)
    output.console.print(Text.assemble(("you> ", "bold"), spoken.transcript.text))
    output.console.print(Text.assemble((f"{name}> ", "bold"), spoken.reply.content))
    for warning in spoken.warnings:
        output.warn(warning)
    if out is not None and fmt is not None and spoken.audio:
        out.write_bytes(spoken.audio if fmt == "wav" else _reencoded(spoken.audio, fmt))
        output.say(f"Wrote {out} ({spoken.audio_ms / 1000:.1f} s)", style="dim")


def _reencoded(wav: bytes, fmt: str) -> bytes:
    return encode_audio(decode_audio(wav, max_seconds=3600), fmt)


def _sounddevice() -> Any:
    """The optional ``sounddevice`` package (PortAudio), imported only for a call."""
    return importlib.import_module("sounddevice")


def microphone_problem() -> str | None:
    """Why a microphone call cannot start here, or None when it can."""
    try:
        sounddevice = _sounddevice()
    except (ImportError, OSError) as exc:  # OSError: the PortAudio library is missing
        return f"the sounddevice package is not usable ({exc}); pip install sounddevice"
    try:
        devices: Any = sounddevice.query_devices()
    except Exception as exc:  # PortAudio reports its own failures
        return f"the audio devices cannot be listed ({exc})"
    if not any(device.get("max_input_channels", 0) > 0 for device in devices):
        return "no audio input device is present"
    return None


async def _call(runtime: Runtime, principal: Principal, persona: str) -> None:
    """A voice call in a new session: microphone in, speaker out, until Ctrl-C."""
    from personae.voice.call import VoiceCall

    sounddevice = _sounddevice()

    session, _ = await runtime.conversations.open(principal, persona,
                                                  {"channel": "cli-voice"})
    loop = asyncio.get_running_loop()
    heard: asyncio.Queue[bytes] = asyncio.Queue()
    player: list[Any] = []

    async def send_event(event: dict[str, Any]) -> None:
        _show_event(event)
        if event.get("type") == "ready" and not player:
            rate = int(event["voice"]["sample_rate"])
            player.append(sounddevice.RawOutputStream(samplerate=rate, channels=1,
                                                      dtype="int16"))
            player[0].start()

    async def send_audio(pcm: bytes) -> None:
        if player:
            await asyncio.to_thread(player[0].write, pcm)

    def captured(data: Any, frames: int, at: Any, status: Any) -> None:
        loop.call_soon_threadsafe(heard.put_nowait, bytes(data))

    with progress("Loading the speech models..."):
        call = VoiceCall(runtime.conversations, runtime.speech, runtime.settings, principal,
                         session.id, send_event, send_audio)
        await call.start()
    output.say("Talking: speak after the greeting; Ctrl-C ends the call.", style="dim")
    try:
        with sounddevice.RawInputStream(samplerate=MICROPHONE_RATE, channels=1,
                                        dtype="int16", blocksize=MICROPHONE_BLOCK,
                                        callback=captured):
            while True:
                await call.receive_audio(await heard.get())
    finally:
        await call.close()
        for stream in player:
            stream.close()


def _show_event(event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "transcript":
        output.console.print(Text.assemble(("you> ", "bold"), str(event.get("text", ""))))
    elif kind == "done":
        message = event.get("message") or {}
        output.console.print(Text.assemble(("reply> ", "bold"),
                                           str(message.get("content", ""))))
    elif kind in ("warning", "error"):
        output.warn(str(event.get("message", "")))
