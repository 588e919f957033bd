"""Settings from the environment (``PERSONAE_*``), an optional config file, and defaults.

Nothing is read at import time: call :func:`get_settings` (cached) or build a
:class:`Settings` explicitly, as tests and ``create_app(settings)`` do.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse_many
from platformdirs import user_data_dir
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from personae.providers.catalogue import CATALOGUE


def default_data_dir() -> Path:
    return Path(user_data_dir("personae", appauthor=False))


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ProviderConfig(BaseModel):
    """One configured model provider (``PERSONAE_PROVIDERS`` is a JSON object of these).

    ``kind`` names a factory in the ``personae.providers`` entry-point group (built in:
    ``embedded``, ``openai``, ``scripted``); it is looked up when the provider is first
    built, so a kind from a package installed later needs no change here.
    """

    kind: str = Field(min_length=1)
    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str | None = None
    timeout_seconds: float = Field(
        default=60.0, gt=0, description="the whole bound on getting a reply started "
        "(every attempt, fallbacks included) and on any gap between its parts")
    first_token_timeout_seconds: float = Field(
        default=15.0, gt=0, description="one attempt's bound to its first token; past it "
        "the attempt fails and the next provider in the chain is tried")
    max_retries: int = Field(default=2, ge=0, le=10)
    max_connections: int = Field(
        default=1000, gt=0, description="open connections to the server at most (an "
        "``openai`` provider's keep-alive pool, per event loop); more callers wait")
    context_window: int = Field(default=8192, gt=0)
    fallback: list[str] = Field(default_factory=list)
    transcription_model: str = Field(
        default="whisper-1", min_length=1, description="the speech recognition model "
        "(``/v1/audio/transcriptions``) when this provider recognises speech")
    speech_model: str = Field(
        default="tts-1", min_length=1, description="the speech synthesis model "
        "(``/v1/audio/speech``) when this provider speaks")


RATE_LIMIT_CLASSES = ("chat", "audio", "jobs", "writes", "other")


class RateLimits(BaseModel):
    """One role's budgets, in the ``limits`` notation (``"60/minute"``, ``"1000/hour"``,
    ``"10/second;300/hour"``), per route class; ``None`` means unlimited.

    Route classes: ``chat`` (turns, ``/v1/chat/completions``, WebSocket and voice turns),
    ``audio`` (transcription and speech), ``jobs`` (panels, evaluations, persona tests,
    writing syntheses), ``writes`` (registry writes), ``other`` (everything else).
    ``tokens_per_day``: model tokens (prompt + completion) per key per UTC day."""

    model_config = {"extra": "forbid"}

    chat: str | None = "60/minute"
    audio: str | None = "30/minute"
    jobs: str | None = "20/minute"
    writes: str | None = "120/minute"
    other: str | None = "1200/minute"
    tokens_per_day: int | None = Field(default=None, ge=0)

    @field_validator(*RATE_LIMIT_CLASSES, "tokens_per_day", mode="before")
    @classmethod
    def _unlimited(cls, value: object) -> object:
        return None if value == "unlimited" else value


RATE_LIMIT_ROLES = ("member", "admin", "anonymous")


def merge_rate_limits(given: dict[str, RateLimits]) -> dict[str, RateLimits]:
    """Settings' budgets over the defaults: a role left out keeps its defaults, and a
    role given in part keeps its other fields (``{"admin": {"chat": "5/minute"}}``
    changes the admin's chat budget only). Every limit is parsed now, not at the first
    request it would refuse."""
    unknown = sorted(set(given) - set(RATE_LIMIT_ROLES))
    if unknown:
        raise ValueError(f"rate_limits: unknown role {', '.join(map(repr, unknown))}; "
                         f"roles: {', '.join(RATE_LIMIT_ROLES)}")
    merged = _default_rate_limits()
    for role, limits in given.items():
        changes = {name: getattr(limits, name) for name in limits.model_fields_set}
        merged[role] = merged[role].model_copy(update=changes)
    for role, limits in merged.items():
        for name in RATE_LIMIT_CLASSES:
            _check_limit(role, name, getattr(limits, name))
    return merged


def _check_limit(role: str, name: str, value: str | None) -> None:
    if value is None:
        return
    try:
        if any(item.amount < 1 for item in parse_many(value)):
            raise ValueError("zero")
    except ValueError:
        raise ValueError(f"rate_limits.{role}.{name}: {value!r} is not a rate limit (at "
                         f"least 1 request per window); write "
                         f"e.g. '60/minute' or '10/second;300/hour' (null or 'unlimited': "
                         f"no limit)") from None


def _default_rate_limits() -> dict[str, RateLimits]:
    return {
        "member": RateLimits(),
        "admin": RateLimits(chat="600/minute", audio="300/minute", jobs="200/minute",
                            writes="1200/minute", other="12000/minute"),
        # keyless loopback callers, counted per client address
        "anonymous": RateLimits(chat="600/minute", audio="300/minute", jobs="200/minute",
                                writes="1200/minute", other="12000/minute"),
    }


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as ``PERSONAE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PERSONAE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default is SQLite in data_dir/personae.db",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    anonymous_loopback: bool = Field(
        default=True,
        description="Requests without an API key act as the local admin, "
        "only while the server is bound to a loopback address.",
    )
    cache_ttl_seconds: float = Field(default=30.0, gt=0)
    cache_max_entries: int = Field(default=10_000, gt=0)
    change_poll_seconds: float = Field(default=0.25, gt=0)
    migrate_on_start: bool = True
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest request body (JSON); a larger "
        "one is answered 413 before it is read")
    max_upload_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="largest upload: POST "
        "/v1/personas/import (persona files, cards) and POST /v1/evaluations (content)")
    max_asset_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="largest persona asset (an avatar, "
        "a card's image or sound); a larger one is refused")
    max_persona_assets: int = Field(default=256, ge=1,
                                    description="assets one persona version may name")
    default_provider: str = Field(default="embedded",
                                  description="provider for personas that name none")
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    judge_provider: str | None = Field(
        default=None, description="provider that scores `judge` assertions in persona "
        "tests; none: those assertions are skipped")
    embedded_model: str = Field(
        # Chosen by bench/model_choice.py (best pass rate with a second-turn TTFT < 1 s).
        default="qwen2.5-coder-0.5b", description="the catalogue model the embedded "
        "provider serves (personae models lists them)")
    embedded_model_path: Path | None = Field(
        default=None, description="a GGUF file to serve instead of embedded_model")
    embedded_parallel: int = Field(default=2, ge=1, le=16,
                                   description="generations the embedded model runs at once")
    embedded_context_window: int = Field(default=2048, gt=0)
    embedded_prompt_cache_states: int = Field(
        default=8, ge=0, le=1024, description="evaluated prompt states the embedded model "
        "keeps per model, so a session's next turn evaluates only its new tokens (least "
        "recently used dropped first; 0: none kept). One state costs about 23 KB per token "
        "with smollm2-135m, 12 KB with qwen2.5-coder-0.5b")
    openai_max_choices: int = Field(
        default=4, ge=1, le=64, description="the largest ``n`` a stateless "
        "/v1/chat/completions call may ask for (each choice is one generation)")
    max_turns_in_flight: int = Field(
        default=1024, ge=1, description="turns one process runs at once; more wait their "
        "turn (their database work is shared in batches, so this bounds memory and model "
        "calls, not connections)")
    database_pool_size: int = Field(default=20, ge=1,
                                    description="connections per process (PostgreSQL)")
    session_idle_seconds: float = Field(default=86_400.0, gt=0,
                                        description="idle sessions expire after this")
    turn_lease_seconds: float = Field(
        default=30.0, gt=0, description="a turn's claim on its session lasts this long "
        "unless the process streaming it renews it (every third of it)")
    stream_flush_seconds: float = Field(
        default=1.0, gt=0, description="a streaming reply's text is saved this often")
    stream_frame_ms: float = Field(
        default=25.0, ge=0, le=1000, description="a streamed reply's deltas reach the client "
        "in frames: the first at once, then at most one frame this often (milliseconds; "
        "0: every delta as it comes)")
    stream_frame_tokens: int = Field(
        default=16, ge=1, le=4096, description="a frame goes out sooner once this many "
        "deltas (about a token each) wait")
    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, description="on shutdown, running turns may finish for this "
        "long before they are stopped and saved as interrupted")
    node_name: str | None = Field(
        default=None, max_length=200, description="a stable name for this server process: "
        "on start it frees at once the turns an earlier process of the same name left "
        "(personae serve with one worker: host name and port); unique per process")
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=30.0, gt=0)
    queue: Literal["local", "arq"] = Field(
        default="local", description="where panel jobs run: in this process, or arq workers")
    redis_url: str | None = Field(
        default=None, description="Redis: the queue for PERSONAE_QUEUE=arq, and rate "
        "limits shared by every API process")
    queue_name: str = "personae:panels"
    panel_concurrency: int = Field(
        default=8, ge=1, le=1000, description="panel jobs one process or worker runs at once")
    panel_max_attempts: int = Field(
        default=3, ge=1, le=10, description="model calls per answer before it is failed")
    job_timeout_seconds: float = Field(
        default=300.0, gt=0, description="a job running longer is cancelled (arq)")
    job_max_tries: int = Field(default=5, ge=1, description="runs of one job (arq)")
    stt_provider: str = Field(
        default="whisper", min_length=1, description="recognises speech unless the "
        "persona's voice provider also does (built in: whisper; or a configured provider)")
    stt_model: Literal["tiny.en", "base"] = Field(
        default="tiny.en", description="the offline recogniser's model: tiny.en (English) "
        "or base (multilingual, about twice as slow; personae[voice-base])")
    tts_provider: str | None = Field(
        default=None, description="speaks for personas whose voice names no provider "
        "(none: a local voice for the persona's language and gender)")
    voice_end_silence_ms: float = Field(
        default=400.0, ge=100, le=5000, description="silence after speech that ends the "
        "user's turn on a voice call")
    voice_max_audio_bytes: int = Field(
        default=25 * 1024 * 1024, gt=0, description="largest audio upload")
    voice_max_audio_seconds: float = Field(
        default=300.0, gt=0, description="longest audio upload, and longest utterance "
        "on a voice call")
    voice_audio_ttl_seconds: float = Field(
        default=3600.0, gt=0, description="reply audio files are removed this long after "
        "they were made")
    voice_threads: int = Field(
        default=2, ge=1, le=64, description="speech recognitions and syntheses one process "
        "runs at once (each on its own thread); more wait their turn")
    log_level: str = "info"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="log lines as JSON objects, or for people to read; "
        "auto: JSON unless standard error is a terminal")
    rate_limits_enabled: bool = Field(
        default=True, description="refuse requests past their key's budget (429)")
    rate_limits: dict[str, RateLimits] = Field(
        default_factory=_default_rate_limits, description="budgets per role (member, "
        "admin, anonymous); a key's own overrides take precedence")
    auth_failures_limit: str | None = Field(
        default="20/minute", description="wrong API keys (on the API or the sign-in form) "
        "one client address may send per window; past it, that address's key attempts get "
        "429 without being checked (null or 'unlimited': no limit)")
    metrics_enabled: bool = Field(default=True,
                                  description="count requests, turns and jobs for /metrics")
    metrics_token: SecretStr | None = Field(
        default=None, description="a bearer token that may read /metrics from any address "
        "(otherwise: loopback callers and admins only)")
    cors_origins: list[str] = Field(
        default_factory=list, description="browser origins allowed to call the API "
        "(CORS); empty: none (the default)")
    cors_allow_credentials: bool = False
    dashboard_enabled: bool = Field(default=True, description="serve the web dashboard at /")
    web_secret: SecretStr | None = Field(
        default=None, description="signs dashboard session cookies; default: a random "
        "secret kept in data_dir/web-secret (set it when processes share no data folder)")
    web_session_hours: float = Field(default=12.0, gt=0, le=24 * 30,
                                     description="a dashboard sign-in lasts this long")

    @field_validator("embedded_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in CATALOGUE:
            raise ValueError(f"unknown embedded model {value!r}; known models: "
                             f"{', '.join(CATALOGUE)}")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _merge_rate_limits(cls, value: dict[str, RateLimits]) -> dict[str, RateLimits]:
        return merge_rate_limits(value)

    @field_validator("auth_failures_limit", mode="before")
    @classmethod
    def _check_auth_failures_limit(cls, value: object) -> object:
        if value is None or value == "unlimited":
            return None
        try:
            if not isinstance(value, str) or any(i.amount < 1 for i in parse_many(value)):
                raise ValueError("zero")
        except ValueError:
            raise ValueError(f"auth_failures_limit: {value!r} is not a rate limit (at least "
                             "1 failure per window); write e.g. '20/minute' or "
                             "'10/minute;100/day' (null or 'unlimited': no limit)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        if value and value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'personae.db'}"

    @property
    def keyless_allowed(self) -> bool:
        return self.anonymous_loopback and is_loopback_host(self.host)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments, then the environment, then the PERSONAE_CONFIG file."""
        config_file = os.environ.get("PERSONAE_CONFIG")
        sources = [init_settings, env_settings]
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
