"""Audio soak: one-shot voice turns for a long while; then nothing may be left behind.

Target: after the run, one TTL and one sweep later, **0 files and 0 bytes** under the
server's ``<data dir>/audio`` folder, and the server's RSS at the end close to its RSS
after warm-up (reported, with the ratio).

Layout: a real ``personae.api.app:create_app`` server (SQLite in a temp dir, the
offline voice stack: Silero, Whisper tiny.en, Piper; the scripted model, which echoes,
so the run measures the audio path rather than a language model) pinned to CPU 0,
with ``PERSONAE_VOICE_AUDIO_TTL_SECONDS`` short (``--ttl``, default 30). The client
(CPU 1) runs ``--concurrency`` workers, each repeatedly: open a session, send a
recorded question (espeak-ng speech, WAV) to ``POST /v1/sessions/{id}/audio``, fetch
the reply's audio from its URL, call ``POST /v1/audio/speech`` every third turn, and
delete every third session (its clips must go with it). After ``--seconds`` (default
3600) it waits one TTL plus one sweep, then counts what is left.

Run: ``flock /tmp/bench.lock .venv/bin/python bench/audio_soak.py [--seconds 120]``;
``--concurrency 1 --pause 5`` keeps the load light for the full hour beside other work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from _common import (
    CLIENT_CPU,
    HOST,
    ROOT,
    Report,
    Server,
    admin_key,
    personae_env,
    pin_self,
    sqlite_url,
    start_server,
    stop_server,
)

PERSONA = {"id": "soak", "name": "Soak Tester", "language": "en", "gender": "male",
           "greetings": ["Hello."]}
QUESTIONS = ("What is my lucky number today?", "Tell me about the moon.",
             "Should I travel next week?", "Which colour suits me best?")
SWEEP_MARGIN_S = 5.0


@dataclass
class Tally:
    turns: int = 0
    speeches: int = 0
    deleted: int = 0
    errors: int = 0


def espeak_wav(text: str) -> bytes:
    """``text`` spoken by the espeak-ng program, as a WAV file."""
    return subprocess.run(["espeak-ng", "--stdout", "-v", "en-us", text], check=True,
                          capture_output=True, timeout=60).stdout


def server_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def left_under(folder: Path) -> tuple[int, int, int]:
    """Files, their bytes, and folders under ``folder``."""
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    folders = [p for p in folder.rglob("*") if p.is_dir()] if folder.exists() else []
    return len(files), sum(p.stat().st_size for p in files), len(folders)


async def one_turn(client: httpx.AsyncClient, audio: bytes, number: int,
                   tally: Tally) -> None:
    opened = await client.post("/v1/sessions", json={"persona_id": PERSONA["id"]})
    opened.raise_for_status()
    session_id = opened.json()["session"]["id"]
    spoken = await client.post(f"/v1/sessions/{session_id}/audio",
                               files={"file": ("question.wav", audio, "audio/wav")})
    spoken.raise_for_status()
    fetched = await client.get(spoken.json()["audio"]["url"])
    fetched.raise_for_status()
    tally.turns += 1
    if number % 3 == 0:
        speech = await client.post("/v1/audio/speech", json={
            "model": "tts-1", "voice": PERSONA["id"], "input": "See you tomorrow."})
        speech.raise_for_status()
        tally.speeches += 1
    if number % 3 == 1:
        (await client.delete(f"/v1/sessions/{session_id}")).raise_for_status()
        tally.deleted += 1


async def worker(server: Server, key: str, audio: list[bytes], deadline: float,
                 tally: Tally, offset: int, pause: float) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers,
                                 timeout=120) as client:
        number = offset
        while time.monotonic() < deadline:
            try:
                await one_turn(client, audio[number % len(audio)], number, tally)
            except httpx.HTTPError as exc:
                tally.errors += 1
                print(f"turn failed: {exc}", file=sys.stderr, flush=True)
            number += 1
            await asyncio.sleep(pause)


async def soak(server: Server, key: str, audio: list[bytes], args: argparse.Namespace,
               report: Report, audio_dir: Path) -> None:
    warm = Tally()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=300,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        await one_turn(client, audio[0], 2, warm)  # loads every model once
    rss_start = server_rss_mb(server.process.pid)
    tally = Tally()
    started = time.monotonic()
    deadline = started + args.seconds
    await asyncio.gather(*(worker(server, key, audio, deadline, tally, offset, args.pause)
                           for offset in range(args.concurrency)))
    elapsed = time.monotonic() - started
    files, size, _ = left_under(audio_dir)
    report.value("turns", tally.turns)
    report.value("turns_per_minute", tally.turns * 60 / elapsed, 1)
    report.value("speech_calls", tally.speeches)
    report.value("sessions_deleted", tally.deleted)
    report.value("errors", tally.errors)
    report.value("files_at_end_of_load", files)
    report.value("bytes_at_end_of_load", size)
    wait = args.ttl + min(60.0, args.ttl) + SWEEP_MARGIN_S
    print(f"waiting {wait:.0f} s (one TTL and one sweep)...", file=sys.stderr, flush=True)
    await asyncio.sleep(wait)
    files, size, folders = left_under(audio_dir)
    rss_end = server_rss_mb(server.process.pid)
    report.value("files_left", files)
    report.value("bytes_left", size)
    report.value("folders_left", folders)
    report.value("server_rss_start_mb", rss_start, 1)
    report.value("server_rss_end_mb", rss_end, 1)
    report.value("server_rss_end_to_start", rss_end / rss_start, 2)
    report.check("nothing_left", files == 0 and size == 0, f"{files} files, {size} bytes")
    report.check("no_errors", tally.errors == 0, f"{tally.errors} failed turns")


def start(data: Path, ttl: float) -> tuple[Server, str]:
    url = sqlite_url(data)
    key = admin_key(url)
    env = {**personae_env(data, url), "PERSONAE_VOICE_AUDIO_TTL_SECONDS": str(ttl),
           "PERSONAE_PROVIDERS": json.dumps({"soak": {"kind": "scripted"}}),
           "PERSONAE_DEFAULT_PROVIDER": "soak"}
    server = start_server("audio-soak", "personae.api.app:create_app", env, timeout=180)
    created = httpx.post(f"http://{HOST}:{server.port}/v1/personas",
                         json={"definition": PERSONA, "global": True},
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)
    created.raise_for_status()
    return server, key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--ttl", type=float, default=30.0,
                        help="PERSONAE_VOICE_AUDIO_TTL_SECONDS for the server")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds each worker waits between turns (a light soak)")
    args = parser.parse_args()
    audio = [espeak_wav(question) for question in QUESTIONS]
    pin_self(CLIENT_CPU)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="bench-audio-soak-") as tmp:
        server, key = start(Path(tmp), args.ttl)
        try:
            asyncio.run(soak(server, key, audio, args, report, Path(tmp) / "audio"))
        finally:
            stop_server(server)
    return report.finish()


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
