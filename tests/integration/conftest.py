"""Fixtures shared by the tests that run the real bundled model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from personae.errors import ProviderUnavailable
from personae.providers.llama_cpp import bundled_model_path, import_llama_cpp

REQUIRE_MODEL_ENV = "PERSONAE_REQUIRE_MODEL"


@pytest.fixture(scope="module")
def model_path() -> Path:
    """The bundled GGUF; skips (or fails, when required) if the model cannot run here."""
    try:
        import_llama_cpp()
        return bundled_model_path()
    except ProviderUnavailable as exc:
        if os.environ.get(REQUIRE_MODEL_ENV) == "1":
            pytest.fail(f"{exc.message}, but {REQUIRE_MODEL_ENV}=1", pytrace=False)
        pytest.skip(f"embedded model not available: {exc.message}")
