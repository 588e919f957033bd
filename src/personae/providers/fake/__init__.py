"""Stand-ins for real model providers, shared by tests and benchmarks.

Names are imported on first use so ``python -m personae.providers.fake.openai_server``
does not load its own module twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from personae.providers.fake.openai_server import FakeOpenAIServer, RecordedRequest

__all__ = ["FakeOpenAIServer", "RecordedRequest"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from personae.providers.fake import openai_server

        return getattr(openai_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
