"""Embedded model throughput: a full Personae session turn against raw llama-cpp-python.

Target: tokens per second of a whole conversation turn through
:class:`~personae.conversations.engine.ConversationService` (a Runtime on a temp SQLite
store, ``default_provider="embedded"``, a persona with temperature 0 whose system prompt
and ``max_tokens`` equal the raw side's) are at least 95% of raw llama-cpp-python
(``Llama.create_chat_completion(stream=True)``) on the same prompt and settings (same
``n_ctx`` and threads), in the same run. Second line, same target: the provider alone
(``EmbeddedLLM.stream()``) against raw.

Tokens per second are measured from the first delta to the end of the reply (``done``
for a session turn, ``Finished`` for the provider, the last chunk for raw), with the
completion tokens each path reports (``Done.usage.completion_tokens`` for a session;
the model's tokenizer on the raw text otherwise). Request-to-end figures, which include
prompt processing and, for a session, its database writes, are printed as well.

Runs rotate between the three paths (the order shifts every round) and the median of
each side is compared. Every session run opens a new session, so the model sees exactly
the raw prompt: the system prompt, then the user's message.

Run: ``.venv/bin/python bench/embedded_tps.py [--quick] [--threads N]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import Report, median, sqlite_url
from personae.auth.principal import Principal
from personae.config import Settings
from personae.conversations.events import Delta, Done, TurnFailed
from personae.providers.base import ChatMessage, Finished, GenerationSettings, TextDelta
from personae.providers.llama_cpp import EmbeddedLLM, bundled_model_path
from personae.runtime import Runtime

TARGET_RATIO = 0.95
N_CTX = 1024
SYSTEM = "You are a helpful assistant."
USER = "Write a detailed essay about the history of the bicycle."
PROMPT = [ChatMessage("system", SYSTEM), ChatMessage("user", USER)]
PERSONA_ID = "bench-tps"


@dataclass(frozen=True)
class Run:
    tokens: int
    seconds: float  # request to the end of the reply
    decode_seconds: float  # first delta to the end of the reply
    text: str = ""

    @property
    def tps(self) -> float:
        return self.tokens / self.decode_seconds if self.decode_seconds > 0 else 0.0

    @property
    def total_tps(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


# One timed generation.
Runner = Callable[[], Awaitable[Run]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="llama.cpp threads for every side (default: cores / 2)")
    parser.add_argument("--rounds", type=int, help="runs per side (default 7, quick 3)")
    parser.add_argument("--max-tokens", type=int, help="tokens per run (default 256, quick 96)")
    return parser.parse_args()


def timed(started: float, first: float | None, tokens: int, text: str) -> Run:
    ended = time.perf_counter()
    if first is None:
        raise RuntimeError("the reply had no text")
    return Run(tokens, ended - started, ended - first, text)


def raw_runner(max_tokens: int, threads: int) -> Runner:
    """llama-cpp-python on its own, iterated synchronously: the baseline."""
    import llama_cpp

    llama = llama_cpp.Llama(model_path=str(bundled_model_path()), n_ctx=N_CTX,
                            n_threads=threads, verbose=False)
    messages: list[Any] = [{"role": m.role, "content": m.content} for m in PROMPT]

    async def run() -> Run:
        started, first = time.perf_counter(), None
        parts: list[str] = []
        for chunk in llama.create_chat_completion(messages=messages, stream=True,
                                                  max_tokens=max_tokens, temperature=0):
            text = chunk["choices"][0]["delta"].get("content")
            if text:
                first = first or time.perf_counter()
                parts.append(text)
        ended = time.perf_counter()
        text = "".join(parts)
        if first is None:
            raise RuntimeError("the reply had no text")
        tokens = len(llama.tokenize(text.encode("utf-8"), add_bos=False))
        return Run(tokens, ended - started, ended - first, text)

    return run


def provider_runner(llm: EmbeddedLLM, max_tokens: int) -> Runner:
    """``EmbeddedLLM.stream()``: worker thread, fair slot, deltas through the loop."""
    settings = GenerationSettings(max_tokens=max_tokens, temperature=0)

    async def run() -> Run:
        started, first = time.perf_counter(), None
        finished: Finished | None = None
        parts: list[str] = []
        async for event in llm.stream(PROMPT, settings, session_key="bench"):
            if isinstance(event, TextDelta):
                first = first or time.perf_counter()
                parts.append(event.text)
            else:
                finished = event
        if finished is None:
            raise RuntimeError("the stream ended without Finished")
        return timed(started, first, finished.usage.completion_tokens, "".join(parts))

    return run


def persona(max_tokens: int) -> dict[str, Any]:
    """No greeting, no knowledge, a template that is exactly the raw system prompt."""
    return {"id": PERSONA_ID, "name": "Bench", "prompt_template": SYSTEM,
            "model": {"temperature": 0, "max_tokens": max_tokens}}


async def open_runtime(directory: Path, llm: EmbeddedLLM,
                       max_tokens: int) -> tuple[Runtime, Principal]:
    """A Runtime on a temp SQLite store whose ``embedded`` provider is ``llm``."""
    settings = Settings(data_dir=directory, database_url=sqlite_url(directory),
                        default_provider="embedded", providers={},
                        embedded_context_window=N_CTX, embedded_parallel=1,
                        anonymous_loopback=False)
    runtime = await Runtime.open(settings, watch=False)
    # The same instance (and thread count) as the provider side, not one built from
    # settings, which have no thread option.
    runtime.providers.register("embedded", llm)
    admin = await runtime.auth.local_admin()
    await runtime.personas.create(admin, persona(max_tokens), global_scope=True)
    return runtime, admin


def session_runner(runtime: Runtime, principal: Principal) -> Runner:
    """A full turn through ConversationService, on a new session each time."""
    conversations = runtime.conversations

    async def run() -> Run:
        session, _ = await conversations.open(principal, PERSONA_ID, {"bench": True})
        started, first, done_at = time.perf_counter(), None, 0.0
        done: Done | None = None
        async for event in await conversations.send(principal, session.id, USER):
            if isinstance(event, Delta):
                first = first or time.perf_counter()
            elif isinstance(event, Done):
                done, done_at = event, time.perf_counter()
            elif isinstance(event, TurnFailed):
                raise RuntimeError(f"turn failed: {event.code}: {event.message}")
        if done is None or first is None:
            raise RuntimeError("the turn ended without text or without done")
        return Run(done.usage["completion_tokens"], done_at - started, done_at - first,
                   done.message.content)

    return run


async def measure(runners: dict[str, Runner], rounds: int) -> dict[str, list[Run]]:
    """Warm each runner once, then rotate them, shifting the order every round."""
    names = list(runners)
    for name in names:
        await runners[name]()
    results: dict[str, list[Run]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(await runners[name]())
    return results


async def bench(args: argparse.Namespace) -> int:
    rounds = args.rounds or (3 if args.quick else 7)
    max_tokens = args.max_tokens or (96 if args.quick else 256)
    llm = EmbeddedLLM(bundled_model_path(), context_window=N_CTX, parallel=1,
                      n_threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-tps-") as tmp:
        runtime: Runtime | None = None
        try:
            await llm.load()
            runtime, admin = await open_runtime(Path(tmp), llm, max_tokens)
            results = await measure({"raw": raw_runner(max_tokens, args.threads),
                                     "session": session_runner(runtime, admin),
                                     "provider": provider_runner(llm, max_tokens)}, rounds)
        finally:
            if runtime is not None:
                await runtime.close()  # closes the registered provider too
            await llm.aclose()
    return report(results, rounds, max_tokens, args.threads)


def report(results: dict[str, list[Run]], rounds: int, max_tokens: int, threads: int) -> int:
    out = Report()
    out.value("model", bundled_model_path().name)
    out.value("settings", f"n_ctx={N_CTX} threads={threads} max_tokens={max_tokens} "
                          f"temperature=0 rounds={rounds}")
    out.value("tokens_per_run", " ".join(f"{name}={runs[0].tokens}"
                                         for name, runs in results.items()))
    texts = {run.text for runs in results.values() for run in runs}
    out.value("same_reply_text_everywhere", "yes" if len(texts) == 1 else
              f"no ({len(texts)} different texts: the prompts or settings differ)")
    tps = {name: median([run.tps for run in runs]) for name, runs in results.items()}
    total = {name: median([run.total_tps for run in runs]) for name, runs in results.items()}
    for name in results:
        out.value(f"{name}_tps", tps[name], 1)
        out.value(f"{name}_request_to_end_tps", total[name], 1)
        out.value(f"{name}_runs_tps", " ".join(f"{run.tps:.1f}" for run in results[name]))
    for name, label in (("session", "embedded_session_tps"),
                        ("provider", "embedded_provider_tps")):
        ratio = tps[name] / tps["raw"] if tps["raw"] else 0.0
        out.value(f"{name}_ratio", ratio)
        out.value(f"{name}_request_to_end_ratio",
                  total[name] / total["raw"] if total["raw"] else 0.0)
        out.check(label, ratio >= TARGET_RATIO,
                  f"{name}/raw = {ratio:.3f} (target >= {TARGET_RATIO})")
    return out.finish()


def main() -> int:
    return asyncio.run(bench(parse_args()))


if __name__ == "__main__":
    sys.exit(main())
