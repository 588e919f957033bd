"""A real-time voice call on one session: the user speaks, the persona answers aloud.

Transport-free: the socket hands :class:`VoiceCall` binary audio and JSON text frames
and gives it two callbacks to send events and audio back. Audio runs through the
endpointer; an utterance is recognised (speculatively from its first short pause, the
result kept if no more speech came), said to the session's :class:`LiveConversation`,
and the reply spoken sentence by sentence as the model writes it (:mod:`.speaker`).
Speech over a reply stops it (barge-in) and keeps what had been heard. ``close`` stops
everything the call started; no task outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal

from personae.auth.principal import Principal
from personae.config import Settings
from personae.conversations.engine import ConversationService, turn_in_progress
from personae.conversations.events import (
    Delta,
    Done,
    Interrupted,
    LiveError,
    LiveEvent,
    MessageSaved,
    PersonaSwitched,
    TurnFailed,
    event_dict,
)
from personae.conversations.live import LiveConversation
from personae.conversations.records import MessageRecord, MessageRevision
from personae.errors import InvalidInput, PersonaeError, ProviderUnavailable, TooLarge
from personae.providers.speech import RECOGNITION_RATE, SpeechRecogniser
from personae.providers.speech_registry import SpeechProviders
from personae.voice import requests
from personae.voice.audio import StreamDecoder
from personae.voice.choice import VoicePlan, plan_voice
from personae.voice.endpoint import Endpointer
from personae.voice.frames import (
    SpeechPaused,
    SpeechStarted,
    SpeechStopped,
    TranscriptReady,
    frame_event,
)
from personae.voice.hearing import CALL_STAGES, Hearing, StageListener, VoiceTurn, report_stages
from personae.voice.sentences import SentenceSplitter
from personae.voice.speaker import SendAudio, SendEvent, Speaker

log = logging.getLogger(__name__)
# Utterances one call may have in recognition at once: a client streaming faster than
# real time must not queue unbounded work on the shared speech threads.
MAX_UTTERANCES_IN_FLIGHT = 2
# A reply's first piece is spoken once it has this many words, punctuation or not: the
# first audio waits for it to be written and synthesised.
FIRST_WORDS = 4


class VoiceCall:
    """One client's voice call on one session (built per socket)."""

    def __init__(self, conversations: ConversationService, speech: SpeechProviders,
                 settings: Settings, principal: Principal, session_id: str,
                 send_event: SendEvent, send_audio: SendAudio, *,
                 before_turn: Callable[[], Awaitable[None]] | None = None,
                 on_stage: StageListener | None = None) -> None:
        self.conversations, self.speech, self.settings = conversations, speech, settings
        self.on_stage = on_stage  # told each voice stage's latency (metrics)
        # The edge's admission of each turn (rate limits): raising refuses the turn.
        self.before_turn = before_turn
        self.principal, self.session_id = principal, session_id
        self.send_event = send_event
        self.live = LiveConversation(conversations, principal, session_id, self._on_event)
        self.speaker = Speaker(send_event, send_audio)
        self.plan: VoicePlan | None = None
        self.hearing: Hearing | None = None
        self.decoder = StreamDecoder("pcm16")
        self._splitter = SentenceSplitter(first_words=FIRST_WORDS)
        self._turn: VoiceTurn | None = None  # the voice turn whose reply is under way
        self._replying = False  # a reply's text is being spoken
        self._tasks: set[asyncio.Task[Any]] = set()
        self._warned_deaf = False
        self._hearing_turns = 0  # utterances being recognised
        self._spoken: str | None = None  # what had been heard of a reply being stopped
        self._stopped: MessageRecord | None = None  # the reply a barge-in saved
        self._annotating = asyncio.Lock()  # one read-merge-write of a message at a time

    # -- the socket's side ---------------------------------------------------------

    async def start(self) -> None:
        """Plan the voice, say ``ready``, and speak a greeting not yet answered."""
        session = await self.conversations.get(self.principal, self.session_id)
        await self._plan(session.persona_id, session.persona_version, announce=False)
        assert self.plan is not None
        await self.send_event({
            "type": "ready", "session": session.public(),
            "voice": {"synthesiser": self.plan.synthesiser,
                      "voice_id": self.plan.voice.voice_id,
                      "language": self.plan.voice.language,
                      "recogniser": self.plan.recogniser, "sample_rate": self.speaker.rate},
            "input": {"format": self.decoder.format, "sample_rate": RECOGNITION_RATE},
            "warnings": list(self.plan.warnings)})
        last = await self.conversations.last_message(self.principal, self.session_id)
        if last is not None and last.role == "assistant" and last.meta.get("greeting"):
            self._speak_text(last)

    async def receive_audio(self, data: bytes) -> None:
        """One binary frame of input audio, in the declared format."""
        await self._guarded(self._audio(data))

    async def receive_text(self, text: str) -> None:
        """One JSON text frame."""
        await self._guarded(self._request(text))

    async def close(self) -> None:
        """The client went away: stop the reply (saved interrupted, with what had been
        heard), the synthesis and any recognition, and wait for every task the call
        started."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        answering = self.live.answering
        spoken = await self.speaker.stop()
        await self.live.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        if answering:  # saved interrupted with what was written; note what was heard
            last = await self.live.last_reply()
            await self._keep_heard(last.id if last else None, spoken, "disconnect",
                                   revise=False)
        with contextlib.suppress(PersonaeError):
            self.decoder.close()

    # -- input -------------------------------------------------------------------------

    async def _audio(self, data: bytes) -> None:
        requests.check_frame(data)
        if self.hearing is None:
            if not self._warned_deaf:
                self._warned_deaf = True
                await self._warn("; ".join(self._plan_warnings()) or
                                 "no speech recogniser; typed messages still work")
            return
        # A container stream's feed waits briefly for its decoder thread: off the loop.
        decoded = (self.decoder.feed(data) if self.decoder.format == "pcm16"
                   else await asyncio.to_thread(self.decoder.feed, data))
        if decoded is not None:
            await self._frames(self.hearing.endpointer.push(decoded))

    async def _request(self, text: str) -> None:
        request = requests.parse_request(text)
        if isinstance(request, requests.Start):
            self.decoder.close()
            self.decoder = StreamDecoder(request.format, sample_rate=request.sample_rate)
        elif isinstance(request, requests.Message):
            await self._say(request.content, None)
        elif isinstance(request, requests.Switch):
            await self._settle_reply()
            await self.live.switch(request.persona_id)
        elif isinstance(request, requests.Interrupt):
            await self._barge_in("client")
        elif self.hearing is not None:
            await self._frames(self.hearing.endpointer.end_of_speech())

    async def _frames(self, frames: list[Any]) -> None:
        assert self.hearing is not None
        for frame in frames:
            if isinstance(frame, SpeechStarted):
                await self._send_frame(frame)
                if self.live.answering or self.speaker.busy():
                    await self._barge_in("speech")
            elif isinstance(frame, SpeechPaused):
                self.hearing.speculate(frame)
            elif isinstance(frame, SpeechStopped):
                await self._send_frame(frame)
                if self._hearing_turns >= MAX_UTTERANCES_IN_FLIGHT:
                    raise TooLarge("utterances arrive faster than they can be recognised; "
                                   "stream audio at real-time pace")
                self._hearing_turns += 1  # counted now: the task may not have started
                self._spawn(self._voice_turn(frame, self.hearing.ended_at(frame, self._now())))

    # -- a voice turn --------------------------------------------------------------

    async def _voice_turn(self, stopped: SpeechStopped, ended_at: float) -> None:
        assert self.hearing is not None
        turn = VoiceTurn(ended_at, self._now)
        try:
            transcript = await self.hearing.recognise(stopped)
        except PersonaeError as exc:
            await self.send_event(event_dict(LiveError(exc)))
            return
        finally:
            self._hearing_turns -= 1
        turn.transcribed(transcript)
        await self._send_frame(TranscriptReady(transcript))
        if transcript.text.strip():
            await self.live.request(self._say(transcript.text, turn))

    async def _say(self, text: str, turn: VoiceTurn | None) -> None:
        recogniser = self.plan.recogniser if self.plan else None
        meta = turn.user_meta(recogniser) if turn is not None else None
        if self.live.answering:  # refused, and the reply being spoken goes on
            raise turn_in_progress(self.session_id)
        if self.before_turn is not None:
            await self.before_turn()
        await self._settle_reply()
        self._turn, self._replying = turn, True
        self._splitter = SentenceSplitter(first_words=FIRST_WORDS)
        self.speaker.begin()
        try:
            await self.live.say(text, meta=meta)
        except BaseException:
            self._replying = False
            await self.speaker.stop()
            raise

    # -- what the conversation emits ---------------------------------------------------

    async def _on_event(self, event: LiveEvent) -> None:
        if isinstance(event, Delta):  # to the synthesiser first: audio is the slow part
            if self._turn is not None:
                self._turn.first_token()
            for piece in self._splitter.feed(event.text):
                self.speaker.say(piece)
        sent = event_dict(event)
        if isinstance(event, Interrupted) and self._spoken is not None:
            sent["spoken"] = self._spoken
            self._stopped = event.message
        await self.send_event(sent)
        if isinstance(event, Done):
            self._end_reply(event.message, None)
        elif isinstance(event, TurnFailed | Interrupted) and self._replying:
            saved = event.saved if isinstance(event, TurnFailed) else event.message
            self._end_reply(saved, "error" if isinstance(event, TurnFailed) else None)
        elif isinstance(event, PersonaSwitched):
            await self._plan(event.persona_id, event.persona_version)
        elif isinstance(event, MessageSaved) and event.message.meta.get("greeting"):
            self._speak_text(event.message)

    def _end_reply(self, message: MessageRecord | None, failed: str | None) -> None:
        if not self._replying:
            return
        self._replying = False
        if message is not None:
            self.speaker.reply.message_id = message.id
        for piece in self._splitter.flush():
            self.speaker.say(piece)
        self.speaker.end()
        self._spawn(self._annotate(message, self._turn, failed))

    async def _annotate(self, message: MessageRecord | None, turn: VoiceTurn | None,
                        failed: str | None) -> None:
        """Once the reply's audio is out: the reply annotated, then (a voice turn) the
        ``timings`` event."""
        audio = await self.speaker.wait()
        if turn is not None:
            turn.first_audio(audio.first_audio_at)
        if message is not None and not failed:
            meta: dict[str, Any] = {"voice": {
                "synthesiser": self.plan.synthesiser if self.plan else None,
                "voice_id": self.plan.voice.voice_id if self.plan else None,
                "audio_ms": round(audio.audio_ms)}}
            if turn is not None:
                meta["timings"] = turn.timings()
            with contextlib.suppress(PersonaeError):
                async with self._annotating:
                    await self.conversations.annotate(
                        self.principal, self.session_id, message.id, meta,
                        turn.metrics() if turn else None)
        if turn is not None:
            timings = turn.timings()
            if self.on_stage is not None:
                report_stages(self.on_stage, timings, CALL_STAGES)
            await self.send_event({"type": "timings", **timings})

    # -- barge-in, greetings, voices -----------------------------------------------

    async def _barge_in(self, by: str) -> None:
        """Stop the reply (text and audio); keep on it what the client had heard."""
        reply, playing = self.speaker.reply, self.speaker.busy()
        spoken = await self.speaker.stop()
        reply_id = reply.message_id
        if self.live.answering:
            self._spoken, self._stopped = spoken, None
            try:
                await self.live.interrupt()  # emits interrupted; the partial reply is saved
            finally:
                self._spoken = None
            reply_id = self._stopped.id if self._stopped is not None else None
        elif playing:
            await self.send_event({"type": "interrupted", "message": None,
                                   "message_id": reply.message_id, "spoken": spoken})
        else:
            return
        await self._keep_heard(reply_id, spoken, by)

    async def _keep_heard(self, message_id: int | None, spoken: str, by: str, *,
                          revise: bool = True) -> None:
        """A reply (or greeting) the user spoke over is saved as what they heard of it,
        ``interrupted``, what was written kept in ``meta.written`` (so the next turn's
        context holds what was said); without ``revise`` only ``meta.spoken`` is set."""
        if message_id is None:
            return
        revision = MessageRevision(content=spoken, status="interrupted") if revise else None
        with contextlib.suppress(PersonaeError):
            async with self._annotating:
                await self.conversations.annotate(
                    self.principal, self.session_id, message_id,
                    {"spoken": spoken, "interrupted_by": by}, revision=revision)

    async def _settle_reply(self) -> None:
        """A new turn stops what is still playing of the last reply (or greeting)."""
        if self.speaker.busy():
            await self.speaker.stop()

    def _speak_text(self, message: MessageRecord) -> None:
        """A whole saved text (a greeting) spoken in the current voice."""
        if self.speaker.synthesiser is None:
            return
        self.speaker.begin(message.id)
        splitter = SentenceSplitter()
        for piece in [*splitter.feed(message.content), *splitter.flush()]:
            self.speaker.say(piece)
        self.speaker.end()

    async def _plan(self, persona_id: str, version: int, *, announce: bool = True) -> None:
        """The persona's voice plan, in use from now on; its warnings sent as events
        (at the start they go in ``ready`` instead)."""
        persona = await self.conversations.prepared.get(persona_id, version)
        self.plan = plan_voice(persona.definition, self.speech, self.settings)
        try:
            synthesiser = (self.speech.synthesiser(self.plan.synthesiser)
                           if self.plan.synthesiser else None)
        except ProviderUnavailable as exc:
            synthesiser = None
            self.plan.warnings.append(f"replies are written, not spoken: {exc.message}")
        self.speaker.use(synthesiser, self.plan.voice)
        self._warm("tts", self.plan.synthesiser)
        self._warm("stt", self.plan.recogniser)
        try:
            self.hearing = self._hearing(self.plan)
        except ProviderUnavailable as exc:
            self.hearing = None
            self.plan.warnings.append(f"speech is not heard: {exc.message}; "
                                      "typed messages still work")
        self._warned_deaf = False
        for warning in self.plan.warnings if announce else ():
            self._warned_deaf = True
            await self._warn(warning)

    def _hearing(self, plan: VoicePlan) -> Hearing | None:
        if plan.recogniser is None:
            return None
        recogniser: SpeechRecogniser = self.speech.recogniser(plan.recogniser)
        if self.hearing is not None and self.hearing.recogniser_name == plan.recogniser:
            self.hearing.retune(recogniser, plan.stt_language)
            return self.hearing
        detector = self.speech.detector()
        endpointer = Endpointer(detector.open(), detector.frame_samples,
                                self.settings.voice_end_silence_ms)
        return Hearing(endpointer, recogniser, plan.recogniser, plan.stt_language,
                       self._spawn)

    def _warm(self, group: Literal["stt", "tts"], name: str | None) -> None:
        """Load a local model now, in the background, so the first turn does not wait."""
        try:
            provider = self.speech.instance(group, name) if name else None
        except PersonaeError:
            return  # reported when it is used
        warm = getattr(provider, "warm", None)
        if warm is not None:
            self._spawn(_quietly(warm()))

    def _plan_warnings(self) -> list[str]:
        return list(self.plan.warnings) if self.plan else []

    # -- small helpers -------------------------------------------------------------

    def _now(self) -> float:
        return self.speaker.clock()

    async def _warn(self, message: str) -> None:
        await self.send_event({"type": "warning", "message": message})

    async def _send_frame(self, frame: Any) -> None:
        event = frame_event(frame)
        if event is not None:
            await self.send_event(event)

    async def _guarded(self, work: Awaitable[None]) -> None:
        """A request's failure becomes an error event; the call goes on."""
        try:
            await work
        except PersonaeError as exc:
            await self.send_event(event_dict(LiveError(exc)))
        except (ValueError, RuntimeError) as exc:
            log.exception("voice call %s: request failed", self.session_id)
            await self.send_event(event_dict(LiveError(InvalidInput(str(exc)))))

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=f"voice {self.session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def _quietly(work: Awaitable[Any]) -> None:
    """A best-effort background step: its failure is logged, the call goes on."""
    try:
        await work
    except Exception:
        log.warning("warming a speech model failed", exc_info=True)
