"""One-shot voice: an uploaded question answered in the persona's voice; and the
transcribe / speak calls behind the OpenAI-compatible audio routes and the CLI.

Text to speech is also streamed (:meth:`VoiceService.speak_stream`): the file is sent
while the rest of the text is still being spoken, so a long text starts playing at
once; everything that can be refused is refused before its first byte.

A spoken turn is an ordinary session turn with audio around it: the upload is
checked and decoded, speech is looked for over the whole clip, the recogniser the
persona's voice plan names transcribes it, the transcript is sent as the user's
message (its audio facts in the message's meta), the reply is spoken sentence by
sentence into one WAV kept as a clip (see :mod:`.clips`), and the reply message is
annotated with the voice used and the time each stage took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, BinaryIO

from personae.auth.principal import Principal
from personae.config import Settings
from personae.conversations.engine import ConversationService
from personae.conversations.events import Done, MessageSaved, TurnFailed
from personae.conversations.records import MessageRecord
from personae.errors import (
    FieldIssue,
    InvalidInput,
    NotFound,
    PersonaeError,
    ProviderUnavailable,
    TooLarge,
    ValidationFailed,
)
from personae.personas.schema import PersonaDefinition
from personae.providers.speech import RECOGNITION_RATE, AudioChunk, Transcript, VoiceChoice
from personae.providers.streams import aclose_stream
from personae.voice import audio as codec
from personae.voice.choice import hears, no_recogniser
from personae.voice.clips import Clip, ClipStore
from personae.voice.encoding import StreamEncoder, encode_audio
from personae.voice.hearing import RESPONSE_STAGES, StageListener, report_stages
from personae.voice.speaking import (
    default_voice,
    local_voice,
    sentences,
    speak_sentences,
    speak_text,
    speech_found,
)

if TYPE_CHECKING:
    from personae.providers.speech_registry import SpeechProviders
    from personae.voice.choice import VoicePlan

log = logging.getLogger(__name__)
SWEEP_SECONDS = 60.0
NO_SPEECH = "no speech found in the audio"
NOTHING_TO_SAY = ("input: has nothing to say: no letters or digits (it is empty, or only "
                  "spaces, punctuation, symbols or control characters)")
OPENAI_PCM_RATE = 24_000


@dataclass(frozen=True, slots=True)
class SpokenReply:
    """A one-shot voice turn: what was heard, the two messages, the reply's audio."""

    transcript: Transcript
    message: MessageRecord  # the user's, its text the transcript
    reply: MessageRecord  # the persona's, annotated with voice and timings
    clip: Clip | None  # None when no voice speaks the persona's language
    audio: bytes  # the clip's WAV (empty without a clip)
    audio_ms: float
    voice: dict[str, Any]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


class VoiceService:
    """Voice around conversations; built once per process by the runtime."""

    def __init__(self, conversations: ConversationService, speech: SpeechProviders,
                 settings: Settings, clips: ClipStore, *,
                 on_stage: StageListener | None = None) -> None:
        self.conversations = conversations
        self.on_stage = on_stage  # told each voice stage's latency (metrics)
        self.speech = speech
        self.settings = settings
        self.clips = clips
        self._sweeper: asyncio.Task[None] | None = None
        # A deleted session's clips go with it, whichever process deletes it.
        conversations.on_delete.append(self._session_deleted)

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Sweep what an earlier process left, then once a minute (a server does)."""
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="audio-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def sweep(self) -> int:
        return await asyncio.to_thread(self.clips.sweep)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(min(SWEEP_SECONDS, self.clips.ttl_seconds))
            try:
                await self.sweep()
            except OSError:  # a full or unmounted disk: try again next round
                log.warning("sweeping reply audio failed", exc_info=True)

    async def _session_deleted(self, user_id: str, session_id: str) -> None:
        await asyncio.to_thread(self.clips.remove_session, user_id, session_id)

    # -- one-shot turn ------------------------------------------------------

    async def respond(self, principal: Principal, session_id: str, data: bytes,
                      filename: str | None = None,
                      content_type: str | None = None) -> SpokenReply:
        """Answer a recorded question in the session, in the persona's voice.

        ``filename`` and ``content_type`` are only reported back; the format is told
        by the bytes."""
        started = time.perf_counter()
        session = await self.conversations.get(principal, session_id)  # 404 first
        audio = await self.decode(data)
        decode_ms = _ms(started)
        persona = await self.conversations.prepared.get(session.persona_id,
                                                        session.persona_version)
        plan = self.plan(persona.definition)
        stt_started = time.perf_counter()
        transcript = await self._recognise(audio, plan)
        stt_ms = _ms(stt_started)
        reply_started = time.perf_counter()
        message, reply = await self._turn(principal, session_id, transcript, plan)
        reply_ms = _ms(reply_started)
        tts_started = time.perf_counter()
        spoken = await self._speak_plan(reply.content, plan)
        tts_ms = _ms(tts_started)
        clip = (await asyncio.to_thread(self.clips.save, principal.user_id, session_id,
                                        spoken.wav, "wav") if spoken else None)
        voice = {"synthesiser": plan.synthesiser, "voice_id": plan.voice.voice_id,
                 "audio_ms": spoken.audio_ms if spoken else 0.0,
                 "clip_id": clip.id if clip else None}
        timings = {"decode_ms": decode_ms, "stt_ms": stt_ms, "reply_ms": reply_ms,
                   "tts_ms": tts_ms, "total_ms": _ms(started)}
        if self.on_stage is not None:
            report_stages(self.on_stage, timings, RESPONSE_STAGES)
        reply = await self.conversations.annotate(
            principal, session_id, reply.id, {"voice": voice, "timings": timings},
            metrics={"voice_stt_ms": stt_ms, "voice_turns": 1.0})
        return SpokenReply(transcript, message, reply, clip, spoken.wav if spoken else b"",
                           spoken.audio_ms if spoken else 0.0, voice, timings,
                           list(plan.warnings))

    async def decode(self, data: bytes) -> AudioChunk:
        """An upload as 16 kHz mono PCM that holds speech: 413 past the size limit,
        415 when it is not audio Personae reads (empty, corrupt, truncated, another
        kind of file), 422 past the duration limit or with no speech in it."""
        limit = self.settings.voice_max_audio_bytes
        if len(data) > limit:
            raise TooLarge(f"the audio is larger than {limit:,} bytes "
                           "(PERSONAE_VOICE_MAX_AUDIO_BYTES)", {"limit": limit})
        audio = await asyncio.to_thread(codec.decode_audio, data,
                                        max_seconds=self.settings.voice_max_audio_seconds)
        detector = self.speech.detector()
        if not await asyncio.to_thread(speech_found, detector, audio):
            raise ValidationFailed([FieldIssue("file", NO_SPEECH)])
        return audio

    def plan(self, definition: PersonaDefinition) -> VoicePlan:
        from personae.voice.choice import plan_voice

        return plan_voice(definition, self.speech, self.settings)

    async def _recognise(self, audio: AudioChunk, plan: VoicePlan,
                         prompt: str | None = None) -> Transcript:
        if plan.recogniser is None:
            raise ValidationFailed([FieldIssue("", plan.unheard or no_recogniser(
                plan.voice.language or "und"))])
        if plan.stt_language:
            self._check_heard(plan.recogniser, plan.stt_language)
        recogniser = self.speech.recogniser(plan.recogniser)
        transcript = await recogniser.transcribe(audio, language=plan.stt_language,
                                                 prompt=prompt)
        if not transcript.text.strip():
            raise ValidationFailed([FieldIssue("file", NO_SPEECH)])
        return transcript

    async def _turn(self, principal: Principal, session_id: str, transcript: Transcript,
                    plan: VoicePlan) -> tuple[MessageRecord, MessageRecord]:
        """Send the transcript as the user's message; the saved message and reply."""
        heard = {"audio_ms": round(transcript.audio_ms, 1),
                 "confidence": transcript.confidence, "recogniser": plan.recogniser,
                 "language": transcript.language}
        events = await self.conversations.send(principal, session_id,
                                               transcript.text.strip(),
                                               meta={"audio": heard})
        message: MessageRecord | None = None
        async for event in events:
            if isinstance(event, MessageSaved) and event.message.role == "user":
                message = event.message
            elif isinstance(event, TurnFailed):
                raise event.error
            elif isinstance(event, Done):
                assert message is not None, "a turn saves the user's message first"
                return message, event.message
        raise PersonaeError("the turn ended without a reply")

    async def _speak_plan(self, text: str, plan: VoicePlan) -> _Spoken | None:
        if plan.synthesiser is None or not text.strip():
            return None
        pcm = await speak_text(self.speech.synthesiser(plan.synthesiser), text, plan.voice)
        return _Spoken(encode_audio(pcm, "wav"), pcm.duration_ms)

    # -- reading clips ------------------------------------------------------

    async def clip(self, principal: Principal, clip_id: str) -> tuple[BinaryIO, str, int]:
        """An open reply-audio file of the caller's (404 for any other id)."""
        return await asyncio.to_thread(self.clips.open, principal.user_id, clip_id)

    # -- transcribe and speak (OpenAI routes, CLI) ----------------------------

    async def transcribe(self, principal: Principal, data: bytes, *,
                         language: str | None = None, persona_id: str | None = None,
                         prompt: str | None = None) -> Transcript:
        """Text of an uploaded recording; with ``persona_id`` (readable by the caller)
        its language and recogniser, else the default recogniser."""
        audio = await self.decode(data)
        if persona_id is not None:
            persona = await self.conversations.prepared.usable(principal, persona_id)
            plan = self.plan(persona.definition)
            if language:
                plan = replace(plan, stt_language=language)
            return await self._recognise(audio, plan, prompt)
        if language:
            self._check_heard(self.settings.stt_provider, language)
        recogniser = self.speech.recogniser(self.settings.stt_provider)
        transcript = await recogniser.transcribe(audio, language=language, prompt=prompt)
        if not transcript.text.strip():
            raise ValidationFailed([FieldIssue("file", NO_SPEECH)])
        return transcript

    def _check_heard(self, recogniser: str, language: str) -> None:
        """A 422 when ``recogniser`` is known not to handle ``language`` (an English-only
        model asked for Hindi would answer in English, not refuse)."""
        try:
            languages = self.speech.recognised_languages(recogniser)
        except ProviderUnavailable:
            return  # not installed: building it reports that
        if not hears(languages, language):
            raise ValidationFailed([FieldIssue("", no_recogniser(
                language, f" ({recogniser} hears {', '.join(sorted(languages or ()))})"))])

    async def speak(self, principal: Principal, text: str, persona_id: str | None = None,
                    voice_id: str | None = None, speed: float = 1.0,
                    fmt: str = "wav") -> bytes:
        """``text`` spoken as a ``fmt`` file: in a persona's voice, a named local voice,
        or (neither) the configured or default voice."""
        return (await self.speak_as(principal, text, persona_id, voice_id, speed, fmt)).audio

    async def speak_as(self, principal: Principal, text: str, persona_id: str | None = None,
                       voice_id: str | None = None, speed: float = 1.0,
                       fmt: str = "wav") -> SpokenText:
        """:meth:`speak`, saying which synthesiser and voice spoke."""
        synthesiser, voice = await self._speaker_for(principal, text, persona_id,
                                                     voice_id, speed)
        pcm = await speak_text(self.speech.synthesiser(synthesiser), text, voice)
        if fmt == "pcm":  # raw samples carry no rate: OpenAI's is 24 kHz
            pcm = await asyncio.to_thread(codec.resample, pcm, OPENAI_PCM_RATE)
        audio = await asyncio.to_thread(encode_audio, pcm, fmt)
        return SpokenText(audio, synthesiser, voice.voice_id, pcm.duration_ms)

    async def speak_stream(self, principal: Principal, text: str,
                           persona_id: str | None = None, voice_id: str | None = None,
                           speed: float = 1.0, fmt: str = "mp3") -> SpeechStream:
        """:meth:`speak_as` as a stream of the file's bytes, sentence by sentence.

        The input, the voice and the first sentence's synthesis and encoding are done
        before this returns, so their failures are raised here; a failure later ends
        the file where the speech stopped (logged). Closing the stream stops the
        synthesis."""
        synthesiser, voice = await self._speaker_for(principal, text, persona_id,
                                                     voice_id, speed)
        spoken = speak_sentences(self.speech.synthesiser(synthesiser), text, voice)
        try:
            first = await anext(spoken, None)
            rate = OPENAI_PCM_RATE if fmt == "pcm" else (
                first.sample_rate if first else RECOGNITION_RATE)
            encoder = StreamEncoder(fmt, rate)
            head = await asyncio.to_thread(encoder.push, first) if first else b""
        except BaseException:
            await aclose_stream(spoken)
            raise
        return SpeechStream(_encoded(spoken, encoder, head), synthesiser, voice.voice_id)

    async def _speaker_for(self, principal: Principal, text: str, persona_id: str | None,
                           voice_id: str | None,
                           speed: float) -> tuple[str, VoiceChoice]:
        """Who speaks ``text``, once it is known to hold something to say."""
        if not sentences(text):  # the splitter drops pieces with no letter or digit
            raise InvalidInput(NOTHING_TO_SAY, {"param": "input"})
        return await self._speaker(principal, persona_id, voice_id, speed)

    async def persona_named(self, principal: Principal, name: str | None) -> str | None:
        """``name`` when it is a persona the caller may use, else None (an OpenAI model
        or voice name such as ``tts-1`` or ``nova``)."""
        if not name:
            return None
        try:
            await self.conversations.prepared.usable(principal, name)
        except (NotFound, InvalidInput):
            return None
        return name

    async def _speaker(self, principal: Principal, persona_id: str | None,
                       voice_id: str | None, speed: float) -> tuple[str, VoiceChoice]:
        if persona_id is not None:
            persona = await self.conversations.prepared.usable(principal, persona_id)
            plan = self.plan(persona.definition)
            if plan.synthesiser is None:
                raise ValidationFailed([FieldIssue("voice", "; ".join(plan.warnings))])
            return plan.synthesiser, VoiceChoice(plan.voice.voice_id,
                                                 plan.voice.speed * speed,
                                                 plan.voice.language)
        found = local_voice(self.speech, voice_id) if voice_id else None
        if found is not None:
            return found[0], VoiceChoice(found[1].id, speed, found[1].language)
        if self.settings.tts_provider:  # a configured provider: its own names (nova, ...)
            return self.settings.tts_provider, VoiceChoice(voice_id, speed)
        if voice_id is not None and voice_id not in OPENAI_VOICES:  # a typo speaks no voice
            raise InvalidInput(f"voice: no persona you can use and no voice is called "
                               f"{voice_id!r}; name a persona, a local voice (such as "
                               "en_US-joe-medium or hi), or one of OpenAI's voice names",
                               {"param": "voice"})
        name, voice = default_voice(self.speech)
        return name, VoiceChoice(voice.id, speed, voice.language)


# OpenAI's voice names: with no cloud synthesiser configured they get the default
# offline voice, so clients written for OpenAI work unchanged.
OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable",
                           "marin", "nova", "onyx", "sage", "shimmer", "verse"})


@dataclass(frozen=True, slots=True)
class SpokenText:
    """Text spoken into a file, and who spoke it."""

    audio: bytes
    synthesiser: str
    voice_id: str | None
    audio_ms: float


@dataclass(frozen=True, slots=True)
class SpeechStream:
    """Text being spoken into a file: who speaks, and the file's bytes as they are
    made (close ``chunks`` to stop early)."""

    chunks: AsyncIterator[bytes]
    synthesiser: str
    voice_id: str | None


async def _encoded(spoken: AsyncIterator[AudioChunk], encoder: StreamEncoder,
                   head: bytes) -> AsyncIterator[bytes]:
    """``head`` (the first sentence's bytes), then each later sentence's as it is
    spoken, then the file's end; the synthesis is closed however this ends."""
    try:
        if head:
            yield head
        try:
            async for piece in spoken:
                if data := await asyncio.to_thread(encoder.push, piece):
                    yield data
        except PersonaeError as exc:  # the response has started: end the file here
            log.warning("speech stream stopped after its first bytes: %s", exc.message)
        if end := await asyncio.to_thread(encoder.finish):
            yield end
    finally:
        await aclose_stream(spoken)


@dataclass(frozen=True, slots=True)
class _Spoken:
    wav: bytes
    audio_ms: float
