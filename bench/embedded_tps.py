"""Embedded model throughput: Personae's streaming path against raw llama-cpp-python.

Target: tokens per second through Personae are at least 95% of raw llama-cpp-python
(``Llama.create_chat_completion(stream=True)``) on the same prompt and settings
(temperature 0, same ``max_tokens``, ``n_ctx`` and threads), in the same run.

Runs alternate between the two paths (the first of each pair flips every round) and the
median of each side is compared. The Personae side is one :data:`Runner`; swapping
:func:`provider_runner` for a runner that plays a full session turn measures the whole
conversation path with nothing else changed.

Run: ``.venv/bin/python bench/embedded_tps.py [--quick] [--threads N]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from _common import Report, median
from personae.providers.base import ChatMessage, Finished, GenerationSettings, TextDelta
from personae.providers.llama_cpp import EmbeddedLLM, bundled_model_path

TARGET_RATIO = 0.95
N_CTX = 1024
PROMPT = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "Write a detailed essay about the history of the bicycle."),
]


@dataclass(frozen=True)
class Run:
    tokens: int
    seconds: float

    @property
    def tps(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


# One timed generation: request to last event, completion tokens counted by the model.
Runner = Callable[[], Awaitable[Run]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="llama.cpp threads for both sides (default: cores / 2)")
    parser.add_argument("--rounds", type=int, help="runs per side (default 7, quick 3)")
    parser.add_argument("--max-tokens", type=int, help="tokens per run (default 256, quick 96)")
    return parser.parse_args()


def raw_runner(max_tokens: int, threads: int) -> Runner:
    """llama-cpp-python on its own, iterated synchronously: the baseline."""
    import llama_cpp

    llama = llama_cpp.Llama(model_path=str(bundled_model_path()), n_ctx=N_CTX,
                            n_threads=threads, verbose=False)
    messages: list[Any] = [{"role": m.role, "content": m.content} for m in PROMPT]

    async def run() -> Run:
        started = time.perf_counter()
        parts: list[str] = []
        for chunk in llama.create_chat_completion(messages=messages, stream=True,
                                                  max_tokens=max_tokens, temperature=0):
            text = chunk["choices"][0]["delta"].get("content")
            if text:
                parts.append(text)
        elapsed = time.perf_counter() - started
        text = "".join(parts)
        return Run(len(llama.tokenize(text.encode("utf-8"), add_bos=False)), elapsed)

    return run


def provider_runner(llm: EmbeddedLLM, max_tokens: int) -> Runner:
    """``EmbeddedLLM.stream()``: worker thread, fair slot, deltas through the loop."""
    settings = GenerationSettings(max_tokens=max_tokens, temperature=0)

    async def run() -> Run:
        started = time.perf_counter()
        finished: Finished | None = None
        async for event in llm.stream(PROMPT, settings, session_key="bench"):
            if not isinstance(event, TextDelta):
                finished = event
        elapsed = time.perf_counter() - started
        if finished is None:
            raise RuntimeError("the stream ended without Finished")
        return Run(finished.usage.completion_tokens, elapsed)

    return run


async def measure(runners: dict[str, Runner], rounds: int) -> dict[str, list[Run]]:
    """Warm each runner once, then alternate them, flipping the order every round."""
    names = list(runners)
    for name in names:
        await runners[name]()
    results: dict[str, list[Run]] = {name: [] for name in names}
    for round_index in range(rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            results[name].append(await runners[name]())
    return results


async def bench(args: argparse.Namespace) -> int:
    rounds = args.rounds or (3 if args.quick else 7)
    max_tokens = args.max_tokens or (96 if args.quick else 256)
    llm = EmbeddedLLM(bundled_model_path(), context_window=N_CTX, parallel=1,
                      n_threads=args.threads)
    try:
        await llm.load()
        results = await measure({"raw": raw_runner(max_tokens, args.threads),
                                 "personae": provider_runner(llm, max_tokens)}, rounds)
    finally:
        await llm.aclose()
    return report(results, rounds, max_tokens, args.threads)


def report(results: dict[str, list[Run]], rounds: int, max_tokens: int, threads: int) -> int:
    out = Report()
    out.value("model", bundled_model_path().name)
    out.value("settings", f"n_ctx={N_CTX} threads={threads} max_tokens={max_tokens} "
                          f"temperature=0 rounds={rounds}")
    raw_tps = median([run.tps for run in results["raw"]])
    personae_tps = median([run.tps for run in results["personae"]])
    out.value("tokens_per_run", f"raw={results['raw'][0].tokens} "
                                f"personae={results['personae'][0].tokens}")
    out.value("raw_tps", raw_tps, 1)
    out.value("personae_tps", personae_tps, 1)
    ratio = personae_tps / raw_tps if raw_tps else 0.0
    out.value("ratio", ratio)
    out.check("embedded_tps", ratio >= TARGET_RATIO,
              f"personae/raw = {ratio:.3f} (target >= {TARGET_RATIO})")
    return out.finish()


def main() -> int:
    return asyncio.run(bench(parse_args()))


if __name__ == "__main__":
    sys.exit(main())
