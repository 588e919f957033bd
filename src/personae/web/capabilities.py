"""Which optional capabilities this installation has, so a page can say how to enable
one instead of failing."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.util import find_spec

from personae.runtime import Runtime

VOICE_HINT = "pip install 'personae[voice]' (offline speech recognition and synthesis)"


@dataclass(frozen=True)
class Capabilities:
    voice: bool
    voice_hint: str
    writing: bool = True
    persona_tests: bool = True
    panels: bool = True


def capabilities_of(runtime: Runtime) -> Capabilities:
    return _capabilities(runtime.settings.stt_provider)


@functools.lru_cache(maxsize=8)
def _capabilities(recogniser: str) -> Capabilities:
    local = recogniser in {"whisper", "embedded"}
    voice = not local or all(find_spec(name) is not None
                             for name in ("faster_whisper", "onnxruntime"))
    return Capabilities(voice=voice, voice_hint=VOICE_HINT)
