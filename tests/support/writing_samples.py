"""Writing samples of one made-up voice, and a synthesis answer that cites them."""

from __future__ import annotations

import json
from pathlib import Path

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
