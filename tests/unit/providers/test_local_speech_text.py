"""The offline speech providers' pure parts: clauses, Piper phoneme ids, espeak-ng voice
listings and rates, Whisper's confidence figure, and the bounded speech pool."""

from __future__ import annotations

import asyncio
import math
import threading
from types import SimpleNamespace

import pytest

from personae.providers.espeak_program import Clause, split_clauses
from personae.providers.espeak_tts import parse_voices, words_per_minute
from personae.providers.piper_tts import clause_phonemes, phoneme_ids
from personae.providers.speech_threads import SpeechPool, speech_pool
from personae.providers.whisper_stt import confidence

ID_MAP = {"_": [0], "^": [1], "$": [2], " ": [3], "!": [4], ",": [8], ".": [10], "?": [13],
          "a": [14], "h": [20], "i": [21], "ə": [59], "ˈ": [120], "̃": [141]}


def test_clauses_keep_their_punctuation() -> None:
    assert split_clauses("Hello there, how are you? I am fine!") == [
        Clause("Hello there", ","), Clause("how are you", "?"), Clause("I am fine", "!")]


def test_clauses_do_not_split_numbers_or_drop_a_last_clause_without_punctuation() -> None:
    assert split_clauses("Pi is 3.14 today; roughly\nso") == [
        Clause("Pi is 3.14 today", ";"), Clause("roughly", ""), Clause("so", "")]


def test_clauses_map_other_scripts_punctuation_to_ascii() -> None:
    assert split_clauses("नमस्ते। आप कैसे हैं？ 好…") == [
        Clause("नमस्ते", "."), Clause("आप कैसे हैं", "?"), Clause("好", ".")]


def test_clauses_skip_punctuation_only_and_blank_text() -> None:
    assert split_clauses("  ... !! \n\n") == []
    assert split_clauses("") == []


def test_phoneme_ids_follow_pipers_layout() -> None:
    # BOS, pad, then each phoneme followed by a pad, then EOS.
    assert phoneme_ids("hˈi!", ID_MAP) == [1, 0, 20, 0, 120, 0, 21, 0, 4, 0, 2]


def test_phoneme_ids_skip_unmapped_phonemes_and_decompose_accents() -> None:
    # "ã" is decomposed (NFD) into "a" + combining tilde, both mapped; "日" is skipped.
    assert phoneme_ids("ã日", ID_MAP) == [1, 0, 14, 0, 141, 0, 2]


def test_clause_phonemes_join_lines_drop_language_flags_and_restore_punctuation() -> None:
    ipa = "həlˈoʊ\n(fr)ʃˈɛ(en) ðˈɛɹ\n"
    assert clause_phonemes(ipa, Clause("hello chez there", "?")) == "həlˈoʊ ʃˈɛ ðˈɛɹ?"


LISTING = """Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  en-us           --/M      English_(America)  gmw/en-US            (en 10)
 5  hi              --/F      Hindi              inc/hi
 5  de              --/M      german-mbrola-1    mb/mb-de1
"""


def test_espeak_voices_skip_mbrola_and_add_gendered_variants() -> None:
    voices = parse_voices(LISTING, "espeak")
    assert [(v.id, v.language, v.gender) for v in voices] == [
        ("en-us", "en-US", "male"), ("en-us+f3", "en-US", "female"),
        ("en-us+m3", "en-US", "male"), ("hi", "hi", "female"), ("hi+f3", "hi", "female"),
        ("hi+m3", "hi", "male")]
    assert {v.quality for v in voices} == {"formant"}


def test_speed_becomes_bounded_words_per_minute() -> None:
    assert words_per_minute(1.0) == 175
    assert words_per_minute(1.5) == 262
    assert words_per_minute(0.01) == 80
    assert words_per_minute(100) == 450


def test_confidence_is_the_token_weighted_mean_probability() -> None:
    segments = [SimpleNamespace(tokens=[1, 2, 3], avg_logprob=math.log(0.9)),
                SimpleNamespace(tokens=[4], avg_logprob=math.log(0.5))]
    assert confidence(segments) == pytest.approx((3 * 0.9 + 0.5) / 4)
    assert confidence([]) is None


async def test_the_pool_never_runs_more_than_its_threads_at_once() -> None:
    pool = SpeechPool(2)
    release = threading.Event()
    started = threading.Semaphore(0)

    def work(index: int) -> int:
        started.release()
        release.wait(10)
        return index

    calls = [asyncio.ensure_future(pool.run(work, n)) for n in range(5)]
    for _ in range(2):
        await asyncio.to_thread(started.acquire, True, 10)
    assert pool.busy == 2
    assert not started.acquire(timeout=0.2)  # a third never starts while two run
    release.set()
    assert await asyncio.gather(*calls) == [0, 1, 2, 3, 4]
    assert pool.peak == 2
    assert pool.busy == 0


def test_the_process_pool_keeps_its_first_size() -> None:
    first = speech_pool()
    assert speech_pool(first.threads + 1) is first
    assert first.threads == speech_pool().threads
