"""``personae personas import`` reads an avatar beside its file; ``export --format
charx`` writes a persona's files into the archive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae.cli.main import app
from tests.support import cards as made


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PERSONAE_DATA_DIR", str(tmp_path / "data"))
    for name in ("PERSONAE_DATABASE_URL", "PERSONAE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_relative_avatar_is_imported_and_exported_as_charx(runner: CliRunner,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    face = made.image_png()
    (folder / "face.png").write_bytes(face)
    (folder / "kai.yaml").write_text("name: Kai\navatar: ./face.png\n", encoding="utf-8")
    imported = runner.invoke(app, ["personas", "import", str(folder / "kai.yaml"), "--json"])
    assert imported.exit_code == 0, imported.output
    (asset,) = json.loads(imported.stdout)["data"][0]["definition"]["assets"]
    assert (asset["name"], asset["media_type"]) == ("main", "image/png")  # type: icon
    out = tmp_path / "kai.charx"
    exported = runner.invoke(app, ["personas", "export", "local/kai", "--format", "charx",
                                   "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    files = made.zip_files(out.read_bytes())
    card = json.loads(files.pop("card.json"))
    assert files == {"assets/icon/images/main.png": face}
    assert card["data"]["assets"] == [{"type": "icon", "name": "main", "ext": "png",
                                       "uri": "embeded://assets/icon/images/main.png"}]
