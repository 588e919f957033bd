"""Stand-ins for real model providers, shared by tests and benchmarks.

* :class:`ScriptedLLM`: in process, replies queued by the test; for fast unit tests.
* :class:`FakeOpenAIServer`: a loopback HTTP server speaking OpenAI's protocol; for
  tests of the real SDK, HTTP and streaming path.
* :class:`ScriptedRecogniser`, :class:`ScriptedSynthesiser`: in-process speech
  providers (a scripted transcript, a tone for speech).
* :class:`FakeAudioServer`: a loopback server speaking OpenAI's audio endpoints.

Names are imported on first use so ``python -m personae.providers.fake.openai_server``
does not load its own module twice, and a scripted test never starts a web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from personae.providers.fake.audio_server import FakeAudioServer
    from personae.providers.fake.openai_server import FakeOpenAIServer, RecordedRequest
    from personae.providers.fake.scripted import ScriptedLLM, ScriptedRequest
    from personae.providers.fake.scripted_speech import ScriptedRecogniser, ScriptedSynthesiser

_MODULES = {
    "FakeAudioServer": "audio_server",
    "FakeOpenAIServer": "openai_server",
    "RecordedRequest": "openai_server",
    "ScriptedLLM": "scripted",
    "ScriptedRequest": "scripted",
    "ScriptedRecogniser": "scripted_speech",
    "ScriptedSynthesiser": "scripted_speech",
}
__all__ = ["FakeAudioServer", "FakeOpenAIServer", "RecordedRequest", "ScriptedLLM",
           "ScriptedRecogniser", "ScriptedRequest", "ScriptedSynthesiser"]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
