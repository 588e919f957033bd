"""A writing persona's ``writing`` block: what was measured, what the model made of it.

The block is plain data kept in the persona definition, so it is versioned, exported
and read like every other part of a persona. Two kinds of content live here and are
kept apart on purpose:

* :class:`Fingerprint` is *measured*: deterministic statistics of the person's own
  samples (the ``personae.writing`` package computes it). Nothing in it is guessed.
* :class:`Synthesis` is what a model *said* about those measurements and the
  onboarding data. Every claim carries evidence quotes taken verbatim from the
  samples; a synthesis that could not be made is stored as ``failed`` with its
  errors, never filled in.

The samples themselves are not part of the definition: they are private to the
persona's owner and stored beside it (see ``personae.writing.store``); the block
only keeps their count, size and digest.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

SynthesisStatus = Literal["ok", "failed", "pending"]
ConfidenceLevel = Literal["low", "medium", "high"]
# The tones a synthesis may name: a closed vocabulary, so a grammar can hold a small
# model to it and platforms can adjust it.
Tone = Literal["formal", "casual", "warm", "playful", "humorous", "serious", "confident",
               "humble", "enthusiastic", "calm", "direct", "diplomatic", "inspirational",
               "analytical", "empathetic", "provocative", "sarcastic", "earnest", "urgent",
               "reflective", "authoritative", "conversational", "optimistic", "critical"]
TONES: tuple[str, ...] = get_args(Tone)


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Onboarding(_Block):
    """What the person told us about themselves (not measured; taken as given)."""

    name: str = Field(default="", max_length=200)  # the person whose voice this is
    audience: str = Field(default="", max_length=1000)
    goals: list[str] = Field(default_factory=list, max_length=20)
    topics: list[str] = Field(default_factory=list, max_length=50)
    # Words the person never wants in a post: a hard rule in validation.
    banned_words: list[str] = Field(default_factory=list, max_length=200)
    notes: str = Field(default="", max_length=4000)


class Marker(_Block):
    """A word or phrase the person favours, measured against a reference list."""

    text: str
    count: int = Field(ge=0)  # occurrences in the samples
    per_1000: float = Field(ge=0)  # per 1,000 words of samples
    # How many times more often than in the language's reference frequency list.
    ratio: float | None = None


class SentenceStats(_Block):
    count: int = Field(ge=0)
    mean_words: float = Field(ge=0)
    median_words: float = Field(ge=0)
    stdev_words: float = Field(ge=0)
    p10_words: float = Field(ge=0)
    p90_words: float = Field(ge=0)
    # Shares of sentences (0-1) by type; they sum to 1 when there are sentences.
    declarative: float = Field(default=0, ge=0, le=1)
    question: float = Field(default=0, ge=0, le=1)
    exclamation: float = Field(default=0, ge=0, le=1)
    fragment: float = Field(default=0, ge=0, le=1)  # no finite verb cue, very short


class Confidence(_Block):
    """How far the measurements can be trusted, from how much text there was."""

    level: ConfidenceLevel
    words: int = Field(ge=0)
    note: str  # plain words: why this level, and how much more text would help


class StyleProfile(_Block):
    """The frequency profile style distance compares against.

    ``features`` maps a feature key to its relative frequency in the samples: ``w:``
    plus a function word (per word), ``c:`` plus a character n-gram (per n-gram).
    ``baseline_*`` is how far the person's own held-out chunks of ``chunk_words``
    words fall from the rest of their samples: the scale a draft is judged on.
    """

    features: dict[str, float] = Field(default_factory=dict)
    # Each feature's standard deviation over chunks of the samples: the person's own
    # scale, so a distance needs no other authors.
    spread: dict[str, float] = Field(default_factory=dict)
    baseline_mean: float | None = None
    baseline_stdev: float | None = None
    chunk_words: int = Field(default=0, ge=0)
    # Method 2 (population z-scores, see writing/stylometry.py) leaves ``spread`` empty
    # and judges a draft on the baseline of the chunk length nearest its own:
    # chunk words -> (mean, stdev) of the own held-out chunks' distances.
    method: int = Field(default=1, ge=1)
    baselines: dict[int, tuple[float, float]] = Field(default_factory=dict)


class Fingerprint(_Block):
    """Deterministic measurements of the samples."""

    language: str  # BCP 47 primary tag detected over all samples
    sample_count: int = Field(ge=0)
    word_count: int = Field(ge=0)
    confidence: Confidence
    sentences: SentenceStats
    mtld: float | None = None  # vocabulary richness, length-robust (None: too little text)
    readability: dict[str, float] = Field(default_factory=dict)  # textstat measures
    go_to_words: list[Marker] = Field(default_factory=list)
    go_to_phrases: list[Marker] = Field(default_factory=list)
    # Common words of the language the samples never use, though their reference
    # frequency predicts several occurrences in this much text.
    avoided_words: list[str] = Field(default_factory=list)
    # Per 1,000 words: em_dash, ellipsis, exclamation, question, semicolon, colon,
    # parenthesis, emoji, hashtag, mention, url, line_break, list_item, ...
    punctuation: dict[str, float] = Field(default_factory=dict)
    contractions_per_1000: float = Field(default=0, ge=0)
    first_person_per_1000: float = Field(default=0, ge=0)
    words_per_sample: float = Field(default=0, ge=0)  # median words in one sample
    hashtags_per_sample: float = Field(default=0, ge=0)
    emoji_per_sample: float = Field(default=0, ge=0)
    profile: StyleProfile = Field(default_factory=StyleProfile)


class Claim(_Block):
    """One statement about the person's writing, with quotes from their samples."""

    text: str = Field(min_length=1, max_length=600)
    evidence: list[str] = Field(default_factory=list, max_length=5)


class ToneRange(_Block):
    default: Tone
    permitted: list[Tone] = Field(default_factory=list)
    forbidden: list[Tone] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list, max_length=5)


class Synthesis(_Block):
    status: SynthesisStatus = "pending"
    identity: Claim | None = None
    tones: ToneRange | None = None
    constraints: list[Claim] = Field(default_factory=list, max_length=20)
    attempts: int = Field(default=0, ge=0)
    errors: list[str] = Field(default_factory=list)  # why attempts were refused
    dropped_claims: int = Field(default=0, ge=0)  # claims refused for lack of evidence
    provider: str | None = None
    model: str | None = None


class SampleSummary(_Block):
    count: int = Field(ge=0)
    words: int = Field(ge=0)
    sha256: str  # over the samples in order: a change means re-measure and regenerate


class WritingBlock(_Block):
    onboarding: Onboarding = Field(default_factory=Onboarding)
    fingerprint: Fingerprint
    synthesis: Synthesis = Field(default_factory=Synthesis)
    samples: SampleSummary
