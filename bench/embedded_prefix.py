"""Prefix reuse on the embedded model: four sessions taking turns in rotation.

Target: four sessions of different personas (the samples ``genz-listener``,
``advertiser``, ``priyanka`` and ``mohit``: 535-665-token system prompts) take turns in
rotation A, B, C, D, A, B, ... through ``ConversationService`` (a Runtime on a temp
SQLite store, ``personae serve``'s embedded settings: 2 slots, a 2048-token context);
each session's later turns reach their first token in **<= 25%** of its own first
turn's time. The same rotation with the state cache off
(``embedded_prompt_cache_states=0``: what llama.cpp keeps on its own) is the baseline,
measured in the same run; both run in their own subprocess so neither inherits the
other's loaded instances or states.

Also measured, per model: what one cached state costs (bytes per token, and at a full
2048-token context, with the time to save and to restore it), the states the cache
held after the rotation, and each child's peak RSS.

Run: ``.venv/bin/python bench/embedded_prefix.py [--quick] [--model NAME ...]``
(default: ``smollm2-135m`` and the default model ``qwen2.5-coder-0.5b``, 4 turns per
session, 48-token replies; ``--quick``: 3 turns, 24-token replies).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, Report, median, sqlite_url
from model_choice import capped_samples, prepared_models_dir

MODELS = ("smollm2-135m", "qwen2.5-coder-0.5b")
TARGET_RATIO = 0.25
CONTEXT = 2048
SESSION_PERSONAS = ("genz-listener", "advertiser", "priyanka", "mohit")
WARM_UP_PERSONA = "python-tutor"
QUESTIONS = ("Hi! Tell me in two sentences what you do.",
             "Interesting. What is the one thing people usually get wrong about it?",
             "Can you give me a short, concrete example?",
             "Thanks. What should I do first, tomorrow morning?",
             "And what would you tell a friend who is just starting out?",
             "Last one: sum up your advice in a single line.")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 turns, 24-token replies")
    parser.add_argument("--model", action="append", choices=MODELS,
                        help="a model to measure (repeatable; default: both)")
    parser.add_argument("--turns", type=int, help="turns per session (default 4, quick 3)")
    parser.add_argument("--max-tokens", type=int, help="reply length (default 48, quick 24)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: measure this model
    parser.add_argument("--states", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--models-dir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


# -- one model, one cache setting, in its own process -----------------------------

async def reply_turn(runtime: Any, principal: Any, session_id: str, text: str,
                     max_tokens: int) -> dict[str, Any]:
    """One turn: time to first delta, the prompt's tokens and those evaluated."""
    from personae.conversations.events import Delta, Done, TurnFailed
    from personae.providers.base import GenerationOverrides

    llm = runtime.providers.get("embedded")
    evaluated_before = llm.prompt_reuse.evaluated
    overrides = GenerationOverrides(max_tokens=max_tokens, temperature=0)
    started, first, done = time.perf_counter(), None, None
    async for event in await runtime.conversations.send(principal, session_id, text,
                                                        overrides):
        if isinstance(event, Delta):
            first = first or time.perf_counter()
        elif isinstance(event, Done):
            done = event
        elif isinstance(event, TurnFailed):
            raise RuntimeError(f"turn failed: {event.error}")
    if first is None or done is None:
        raise RuntimeError("the turn had no text or no done")
    return {"ttft_s": first - started, "prompt_tokens": done.usage.get("prompt_tokens", 0),
            "evaluated": llm.prompt_reuse.evaluated - evaluated_before}


def state_cost(llm: Any) -> dict[str, float]:
    """Save and restore one instance's state at a nearly full context (untimed eval)."""
    from personae.providers.prefix_cache import LLAMA_STATES

    _, pool = llm.pool_for(None)
    instance = pool.checkout()
    try:
        filler = " ".join(f"Line {n}: the quick brown fox jumps over the lazy dog."
                          for n in range(400))
        tokens = instance.tokenize(filler.encode("utf-8"))[: CONTEXT - 8]
        instance.reset()
        started = time.perf_counter()
        instance.eval(tokens)
        eval_s = time.perf_counter() - started
        started = time.perf_counter()
        saved = LLAMA_STATES.save(instance)
        save_s = time.perf_counter() - started
        started = time.perf_counter()
        restored = saved is not None and LLAMA_STATES.restore(instance, saved)
        restore_s = time.perf_counter() - started
        if saved is None or not restored:
            raise RuntimeError("the state could not be saved and restored")
        return {"state_tokens": len(saved.tokens), "state_bytes": saved.nbytes,
                "state_save_ms": save_s * 1000, "state_restore_ms": restore_s * 1000,
                "full_eval_s": eval_s}
    finally:
        instance.reset()
        pool.checkin(instance)


async def rotation(runtime: Any, principal: Any, turns: int,
                   max_tokens: int) -> dict[str, list[dict[str, Any]]]:
    """Each session in turn, ``turns`` rounds; per persona, each turn's figures."""
    sessions = {pid: (await runtime.conversations.open(principal, pid, {"bench": "prefix"}))[0]
                for pid in SESSION_PERSONAS}
    results: dict[str, list[dict[str, Any]]] = {pid: [] for pid in sessions}
    for turn in range(turns):
        for pid, session in sessions.items():
            figures = await reply_turn(runtime, principal, session.id, QUESTIONS[turn],
                                       max_tokens)
            results[pid].append(figures)
            print(f"  {pid} turn {turn + 1}: TTFT {figures['ttft_s']:.3f} s, "
                  f"{figures['evaluated']}/{figures['prompt_tokens']} prompt tokens "
                  "evaluated", file=sys.stderr, flush=True)
    return results


async def measure_one(model: str, states: int, turns: int, max_tokens: int,
                      models_dir: Path) -> dict[str, Any]:
    from personae.config import Settings
    from personae.runtime import Runtime

    with tempfile.TemporaryDirectory(prefix="bench-prefix-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "models").symlink_to(models_dir, target_is_directory=True)
        settings = Settings(data_dir=data_dir, database_url=sqlite_url(data_dir),
                            default_provider="embedded", providers={}, embedded_model=model,
                            embedded_context_window=CONTEXT,
                            embedded_prompt_cache_states=states, anonymous_loopback=False)
        runtime = await Runtime.open(settings, watch=False)
        try:
            await runtime.personas.seed(capped_samples(data_dir / "samples", max_tokens),
                                        "bench")
            principal = await runtime.auth.local_admin()
            llm = runtime.providers.get("embedded")
            await llm.load()
            warm, _ = await runtime.conversations.open(principal, WARM_UP_PERSONA)
            await reply_turn(runtime, principal, warm.id, "Hello", 8)
            results = await rotation(runtime, principal, turns, max_tokens)
            cache = llm.prompt_states
            held = {"states_held": len(cache), "states_mb": cache.nbytes / 2**20,
                    "saves": cache.saves, "restores": cache.restores}
            cost = await asyncio.to_thread(state_cost, llm)
        finally:
            await runtime.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"sessions": results, **held, **cost, "peak_rss_mb": peak}


# -- the parent -----------------------------------------------------------------

def run_child(model: str, states: int, args: argparse.Namespace,
              models_dir: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--one", model,
               "--states", str(states), "--models-dir", str(models_dir),
               "--turns", str(args.turns), "--max-tokens", str(args.max_tokens)]
    print(f"{model}, {states} cached states:", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, check=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def missing(model: str, models_dir: Path) -> str | None:
    """None when the model can run here, else the command that installs it."""
    from personae.providers.assembly import is_ready
    from personae.providers.catalogue import get_model, missing_parts

    spec = get_model(model)
    if is_ready(spec, models_dir.parent) or not missing_parts(spec):
        return None
    return spec.install_command


def session_ratios(run: dict[str, Any]) -> dict[str, float]:
    """Per session: its slowest later turn's TTFT over its first turn's."""
    return {pid: max(t["ttft_s"] for t in turns[1:]) / turns[0]["ttft_s"]
            for pid, turns in run["sessions"].items()}


def later(run: dict[str, Any], key: str) -> list[float]:
    return [t[key] for turns in run["sessions"].values() for t in turns[1:]]


def report_model(out: Report, model: str, cached: dict[str, Any],
                 baseline: dict[str, Any]) -> None:
    first = [turns[0] for turns in cached["sessions"].values()]
    out.value(f"{model}_first_turn_prompt_tokens", " ".join(
        str(t["prompt_tokens"]) for t in first))
    for name, run in (("cached", cached), ("baseline", baseline)):
        ratios = session_ratios(run)
        out.value(f"{model}_{name}_first_ttft_s", " ".join(
            f"{turns[0]['ttft_s']:.3f}" for turns in run["sessions"].values()))
        out.value(f"{model}_{name}_later_ttft_median_s", median(later(run, "ttft_s")), 3)
        out.value(f"{model}_{name}_later_evaluated_median_tokens",
                  median(later(run, "evaluated")), 0)
        out.value(f"{model}_{name}_worst_later_vs_first", max(ratios.values()), 3)
        out.value(f"{model}_{name}_later_vs_first_by_session", " ".join(
            f"{pid}={ratio:.3f}" for pid, ratio in ratios.items()))
        out.value(f"{model}_{name}_peak_rss_mb", run["peak_rss_mb"], 0)
    out.value(f"{model}_later_ttft_cached_vs_baseline",
              median(later(cached, "ttft_s")) / median(later(baseline, "ttft_s")), 3)
    out.value(f"{model}_cache_after_rotation", f"{cached['states_held']} states, "
              f"{cached['states_mb']:.1f} MB, {cached['saves']} saves, "
              f"{cached['restores']} restores")
    per_token = cached["state_bytes"] / cached["state_tokens"]
    out.value(f"{model}_state_kb_per_token", per_token / 1024, 1)
    out.value(f"{model}_state_mb_at_{CONTEXT}", per_token * CONTEXT / 2**20, 1)
    out.value(f"{model}_state_save_ms", cached["state_save_ms"], 1)
    out.value(f"{model}_state_restore_ms", cached["state_restore_ms"], 1)
    out.value(f"{model}_full_eval_{cached['state_tokens']}_tokens_s", cached["full_eval_s"], 2)
    worst = max(session_ratios(cached).values())
    out.check(f"{model}_later_turns_within_25pct_of_first", worst <= TARGET_RATIO,
              f"worst later/first = {worst:.3f} (target <= {TARGET_RATIO})")


def main() -> int:
    args = parse_args()
    args.turns = args.turns or (3 if args.quick else 4)
    args.max_tokens = args.max_tokens or (24 if args.quick else 48)
    if args.one:
        result = asyncio.run(measure_one(args.one, args.states, args.turns, args.max_tokens,
                                         args.models_dir))
        print(json.dumps(result))
        return 0
    models_dir = prepared_models_dir()
    out = Report()
    out.value("settings", f"n_ctx={CONTEXT} slots=2 turns={args.turns} "
                          f"max_tokens={args.max_tokens} temperature=0 cached_states=8")
    for model in args.model or MODELS:
        install = missing(model, models_dir)
        if install is not None:
            out.value(f"{model}_skipped", f"not installed ({install})")
            continue
        cached = run_child(model, 8, args, models_dir)
        baseline = run_child(model, 0, args, models_dir)
        report_model(out, model, cached, baseline)
    return out.finish()


if __name__ == "__main__":
    sys.exit(main())
