"""Writing samples of one made-up voice, a synthesis answer that cites them, and the
settings and scripted model the writing tests share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from personae.config import ProviderConfig, Settings
from personae.providers.fake.scripted import ScriptedLLM
from personae.providers.registry import ProviderRegistry

SAMPLES = (
    "Shipping beats polishing. I wrote that on a sticky note in 2019 and it is still on "
    "my monitor. Every release we held back for one more round of polish taught us "
    "less than the scrappy one we pushed out on a Friday.",
    "Here is the thing about code review: it is a conversation, not a gate. When I "
    "review, I ask questions first. Why this shape? What breaks if we remove it? Most "
    "of the time the author already knows the answer.",
    "Small teams win by saying no. We said no to three big customers last quarter, and "
    "honestly it was the best decision we made. Focus is a feature you cannot buy "
    "later, so guard it early and guard it often.",
    "I keep a list of every outage we have had. Not to blame anyone, but because the "
    "patterns only show up when you look at them side by side. Most of ours started "
    "with a config change that nobody reviewed.",
)
IDENTITY = "A pragmatic engineering lead who writes short, direct notes about shipping."


def synthesis_answer(identity: str = IDENTITY) -> str:
    """A JSON answer in the synthesis schema citing excerpts of :data:`SAMPLES` by id
    (E1 "Shipping beats polishing.", E4 the code-review sentence, E9 the one on
    saying no)."""
    return json.dumps({
        "identity": {"text": identity, "evidence": ["E1"]},
        "tones": {"default": "direct", "permitted": ["conversational", "reflective"],
                  "forbidden": ["sarcastic"], "evidence": ["E4"]},
        "constraints": [{"rule": "always", "text": "Prefers short declarative sentences.",
                         "evidence": ["E9"]}],
    })


def write_samples(folder: Path, samples: tuple[str, ...] = SAMPLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number, text in enumerate(samples):
        (folder / f"post-{number:02d}.txt").write_text(text, encoding="utf-8")
    return folder


def scripted_settings(database_url: str, data_dir: Path, **fields: Any) -> Settings:
    """Settings whose default provider, ``model``, is the scripted fake."""
    return Settings(data_dir=data_dir, database_url=database_url, default_provider="model",
                    providers={"model": ProviderConfig(kind="scripted")},
                    **fields)


def scripted_model(providers: ProviderRegistry) -> ScriptedLLM:
    llm = providers.get("model")
    assert isinstance(llm, ScriptedLLM)
    return llm
