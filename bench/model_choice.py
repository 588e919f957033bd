"""Which embedded model should be the default: every catalogued model, side by side.

For each catalogued model that is installed (the others are skipped with the command
that installs them), one subprocess (``--one MODEL --json``, so peak RSS is that
model's alone) opens a ``Runtime`` on a throwaway SQLite data dir seeded with the
sample personas, with ``embedded_model`` set to the model and every other setting as
``personae serve`` has it. It measures:

- time to first token on a first and on a second turn of one real session through
  ``ConversationService`` (llama.cpp keeps whatever prefix it keeps today), and decode
  tokens/s over those turns (completion tokens / first delta to ``done``);
- every shipped suite (``src/personae/quality/suites``) through ``PersonaTester``,
  in-process: per persona, cases passed / cases counted (skipped cases count neither
  way), and overall;
- the process's peak RSS (``ru_maxrss``) with the model loaded.

Every persona's ``max_tokens`` is capped at 160 (``--max-tokens``) to keep the full run
at a few minutes per model on 2 cores; the copies of the samples differ in nothing else.

The parent prints the table, ratios against ``smollm2-135m`` measured in the same run,
and the default by the rule: the best overall pass rate among models whose second-turn
TTFT is under 1 s; ties go to the faster decoder.

Run: ``.venv/bin/python bench/model_choice.py [--quick] [--repeat N]``
(full: every suite, 3 repetitions per case, 3 sessions; ``--quick``: one suite, one
repetition, one session).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from _common import ROOT, Report, median, sqlite_url

BASELINE = "smollm2-135m"
TTFT_LIMIT_S = 1.0
MAX_TOKENS = 160
FULL_REPEAT = 3  # repetitions per case in the full run (a case passes at its threshold)
QUICK_SUITE = "python-tutor"
# Sessions rotate over these personas, so each first turn starts from another
# persona's prompt rather than one llama.cpp has just processed.
SESSION_PERSONAS = ("python-tutor", "mohit", "genz-listener")
WARM_UP_PERSONA = "advertiser"
TURNS = ("What is a list comprehension in Python?",
         "Thanks. Now show me one more example, shorter.")


@dataclass
class ModelRow:
    """One model's figures, as the ``--one`` child reports them."""

    model: str
    ttft_first_s: float
    ttft_second_s: float
    decode_tps: float
    peak_rss_mb: float
    load_s: float = 0.0
    suites_s: float = 0.0
    personas: dict[str, list[int]] = field(default_factory=dict)  # id -> [passed, counted]

    @property
    def passed(self) -> int:
        return sum(p for p, _ in self.personas.values())

    @property
    def counted(self) -> int:
        return sum(c for _, c in self.personas.values())

    @property
    def pass_rate(self) -> float:
        return self.passed / self.counted if self.counted else 0.0


def choose_default(rows: list[ModelRow], ttft_limit_s: float = TTFT_LIMIT_S) -> str | None:
    """The best overall pass rate among models whose second-turn TTFT is under the
    limit; ties go to the higher decode rate. None when no model is fast enough."""
    eligible = [row for row in rows if row.ttft_second_s < ttft_limit_s]
    if not eligible:
        return None
    return max(eligible, key=lambda row: (row.pass_rate, row.decode_tps)).model


# -- one model, in its own process ------------------------------------------------

def capped_samples(target: Path, max_tokens: int) -> Path:
    """The sample personas, copied, with ``model.max_tokens`` at most ``max_tokens``."""
    from personae.runtime import samples_folder

    shutil.copytree(samples_folder(), target)
    for path in sorted(target.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        model = data.setdefault("model", {}) or {}
        model["max_tokens"] = min(int(model.get("max_tokens") or max_tokens), max_tokens)
        data["model"] = model
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
    return target


def suite_paths(quick: bool) -> list[Path]:
    folder = ROOT / "src" / "personae" / "quality" / "suites"
    paths = sorted(folder.glob("*.yaml"))
    return [p for p in paths if p.stem == QUICK_SUITE] if quick else paths


async def warm_up(runtime: Any, principal: Any) -> None:
    """One short untimed reply, so the first timed turn does not page the weights in."""
    from personae.providers.base import GenerationOverrides

    session, _ = await runtime.conversations.open(principal, WARM_UP_PERSONA)
    async for _ in await runtime.conversations.send(principal, session.id, "Hello",
                                                    GenerationOverrides(max_tokens=8)):
        pass


async def session_turns(runtime: Any, principal: Any,
                        persona_id: str) -> tuple[float, float, int, float]:
    """One session, two turns: (TTFT first, TTFT second, completion tokens, decode s)."""
    from personae.conversations.events import Delta, Done, TurnFailed

    session, _ = await runtime.conversations.open(principal, persona_id,
                                                  {"bench": "model_choice"})
    ttfts, tokens, decode = [], 0, 0.0
    for text in TURNS:
        started, first = time.perf_counter(), None
        async for event in await runtime.conversations.send(principal, session.id, text):
            if isinstance(event, Delta):
                first = first or time.perf_counter()
            elif isinstance(event, Done):
                if first is None:
                    raise RuntimeError("the reply had no text")
                ttfts.append(first - started)
                print(f"  {persona_id} turn {len(ttfts)}: TTFT {ttfts[-1]:.2f} s",
                      file=sys.stderr, flush=True)
                tokens += event.usage.get("completion_tokens", 0)
                decode += time.perf_counter() - first
            elif isinstance(event, TurnFailed):
                raise RuntimeError(f"turn failed: {event.error.message}")
    return ttfts[0], ttfts[1], tokens, decode


async def suite_rates(runtime: Any, principal: Any, quick: bool,
                      repeat: int | None) -> dict[str, list[int]]:
    """Every shipped suite: persona id -> [cases passed, cases counted]."""
    from personae.quality.results import Target
    from personae.quality.runner import PersonaTester
    from personae.quality.suite import load_suite

    tester = PersonaTester(runtime.personas, runtime.prepared, runtime.providers,
                           runtime.conversations, runtime.settings.judge_provider)
    rates: dict[str, list[int]] = {}
    for path in suite_paths(quick):
        suite = load_suite(path)
        persona_id = suite.persona or path.stem
        result = await tester.run(principal, suite, Target(persona_id),
                                  repeat=1 if quick else repeat or FULL_REPEAT)
        counted = [case for case in result.cases if case.status != "skipped"]
        tally = rates.setdefault(persona_id, [0, 0])
        tally[0] += sum(case.status == "passed" for case in counted)
        tally[1] += len(counted)
        print(f"  {persona_id}: {tally[0]}/{tally[1]}", file=sys.stderr, flush=True)
    return rates


async def measure_one(model: str, quick: bool, repeat: int | None, max_tokens: int,
                      models_dir: Path) -> ModelRow:
    from personae.config import Settings
    from personae.runtime import Runtime

    with tempfile.TemporaryDirectory(prefix="bench-model-choice-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "models").symlink_to(models_dir, target_is_directory=True)
        settings = Settings(data_dir=data_dir, database_url=sqlite_url(data_dir),
                            default_provider="embedded", providers={},
                            embedded_model=model, anonymous_loopback=False)
        runtime = await Runtime.open(settings, watch=False)
        try:
            await runtime.personas.seed(capped_samples(data_dir / "samples", max_tokens),
                                        "bench")
            principal = await runtime.auth.local_admin()
            started = time.perf_counter()
            await runtime.providers.get("embedded").load()  # type: ignore[attr-defined]
            load_s = time.perf_counter() - started
            await warm_up(runtime, principal)
            sessions = [await session_turns(runtime, principal, persona_id)
                        for persona_id in SESSION_PERSONAS[:1 if quick else 3]]
            started = time.perf_counter()
            rates = await suite_rates(runtime, principal, quick, repeat)
            suites_s = time.perf_counter() - started
        finally:
            await runtime.close()
    return ModelRow(model, median([s[0] for s in sessions]), median([s[1] for s in sessions]),
                    sum(s[2] for s in sessions) / sum(s[3] for s in sessions),
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    load_s, suites_s, rates)


# -- the parent: every model, then the table ------------------------------------

def prepared_models_dir() -> Path:
    """The user's data dir's models folder, with every installed split model
    assembled there first (untimed, as ``personae models prepare`` does)."""
    from personae.config import default_data_dir
    from personae.providers.assembly import model_path
    from personae.providers.catalogue import CATALOGUE, installed

    data_dir = Path(os.environ.get("PERSONAE_DATA_DIR") or default_data_dir())
    for spec in CATALOGUE.values():
        if spec.split and installed(spec):
            model_path(spec, data_dir)
    (data_dir / "models").mkdir(parents=True, exist_ok=True)
    return data_dir / "models"


def run_child(model: str, args: argparse.Namespace, models_dir: Path) -> ModelRow:
    command = [sys.executable, str(Path(__file__).resolve()), "--one", model, "--json",
               "--models-dir", str(models_dir), "--max-tokens", str(args.max_tokens)]
    command += ["--quick"] if args.quick else []
    command += ["--repeat", str(args.repeat)] if args.repeat else []
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, check=True, text=True)
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return ModelRow(**data)


def table(rows: list[ModelRow]) -> str:
    """A Markdown table: models down, pass rate per persona, then speed and memory."""
    personas = sorted({pid for row in rows for pid in row.personas})
    head = ["model", *personas, "overall", "decode tok/s", "TTFT 1st turn s",
            "TTFT 2nd turn s", "peak RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.model]
        for pid in personas:
            passed, counted = row.personas.get(pid, [0, 0])
            cells.append(f"{passed}/{counted}")
        cells += [f"{row.passed}/{row.counted} ({row.pass_rate:.0%})", f"{row.decode_tps:.1f}",
                  f"{row.ttft_first_s:.2f}", f"{row.ttft_second_s:.2f}",
                  f"{row.peak_rss_mb:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(rows: list[ModelRow], skipped: list[str], args: argparse.Namespace) -> int:
    from personae.config import Settings

    out = Report()
    out.value("settings", f"max_tokens<={args.max_tokens} quick={args.quick} "
                          f"repeat={1 if args.quick else args.repeat or FULL_REPEAT} "
                          f"cores={os.cpu_count()}")
    for line in skipped:
        out.value("skipped", line)
    base = next((row for row in rows if row.model == BASELINE), None)
    for row in rows:
        out.value(f"{row.model}_load_s", row.load_s, 1)
        out.value(f"{row.model}_suites_s", row.suites_s, 1)
        if base is not None:
            out.value(f"{row.model}_tps_ratio_vs_{BASELINE}", row.decode_tps / base.decode_tps)
            out.value(f"{row.model}_ttft2_ratio_vs_{BASELINE}",
                      row.ttft_second_s / base.ttft_second_s)
    print(table(rows), flush=True)
    chosen = choose_default(rows)
    out.value("chosen_default", chosen or "none")
    out.check("a_model_meets_ttft", chosen is not None,
              f"second-turn TTFT < {TTFT_LIMIT_S} s for {chosen or 'no model'}")
    configured = Settings.model_fields["embedded_model"].default
    if not args.quick and not skipped:
        out.check("config_default_is_chosen", configured == chosen,
                  f"embedded_model default {configured}, measured choice {chosen}")
    return out.finish()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one suite, one repetition")
    parser.add_argument("--repeat", type=int, help=f"repetitions per case (default {FULL_REPEAT})")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS,
                        help=f"cap on every persona's max_tokens (default {MAX_TOKENS})")
    parser.add_argument("--one", metavar="MODEL", help="measure one model (child process)")
    parser.add_argument("--json", action="store_true", help="with --one: print JSON")
    parser.add_argument("--models-dir", type=Path, help="with --one: assembled models")
    return parser.parse_args()


def main() -> int:
    from personae.providers.catalogue import CATALOGUE, installed

    args = parse_args()
    if args.one:
        models_dir = args.models_dir or prepared_models_dir()
        row = asyncio.run(measure_one(args.one, args.quick, args.repeat, args.max_tokens,
                                      models_dir))
        print(json.dumps(asdict(row)) if args.json else table([row]), flush=True)
        return 0
    models_dir = prepared_models_dir()
    rows, skipped = [], []
    for spec in CATALOGUE.values():
        if not installed(spec):
            skipped.append(f"{spec.name} (not installed: {spec.install_command})")
            continue
        print(f"measuring {spec.name}", file=sys.stderr, flush=True)
        rows.append(run_child(spec.name, args, models_dir))
    return report(rows, skipped, args)


if __name__ == "__main__":
    sys.exit(main())
