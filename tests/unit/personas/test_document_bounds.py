"""Persona files, imports and cards are read with bounds, whatever their headers say.

YAML aliases are refused (a ~400-byte "billion laughs" file once became a 389 MB
persona), JSON and YAML may nest at most 64 levels, a CHARX ``card.json`` is inflated
with a running cap on the bytes it actually produces, and a PNG card is not decoded
when it declares more pixels than a card needs.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from personae.auth.principal import Principal
from personae.errors import InvalidInput
from personae.personas.card_files import MAX_CARD_JSON_BYTES, read_charx
from personae.personas.cards import import_card
from personae.personas.files import parse_document
from personae.personas.transfer import import_bytes
from personae.runtime import Runtime
from tests.support.measure import measured

FAST = 0.5  # seconds; generous, these are refused in milliseconds
LITTLE_MEMORY = 16 * 1024 * 1024
BILLION_LAUGHS = "\n".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
      for prev, name in zip("abcdefgh", "bcdefghi", strict=True)),
    "name: *i",
])



def _refused(run: Callable[[], object], message: str) -> tuple[float, int]:
    def refused() -> None:
        with pytest.raises(InvalidInput, match=message):
            run()
    return measured(refused)


# ---------------------------------------------------------------------------- YAML


def test_billion_laughs_is_refused_fast_naming_the_alias() -> None:
    assert len(BILLION_LAUGHS) < 500
    elapsed, peak = _refused(lambda: import_bytes(BILLION_LAUGHS.encode(), "laughs.yaml"),
                             r"line 2 column \d+: YAML aliases \(\*a\) are not accepted")
    assert elapsed < FAST
    assert peak < LITTLE_MEMORY


@pytest.mark.parametrize("text", [
    "a: &x {k: v}\nb: *x\n",
    "base: &base {name: Ada}\npersona:\n  <<: *base\n",
    "- &one 1\n- *one\n",
])
def test_every_alias_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^p.yaml: line \d+ column \d+: YAML aliases"):
        parse_document(text, "p.yaml")


def test_anchors_without_aliases_still_load() -> None:
    assert parse_document("name: &n Ada\ntags: [a, b]\n", "p.yaml") == {
        "name": "Ada", "tags": ["a", "b"]}


@pytest.mark.parametrize(("text", "source"), [
    ("[" * 100_000 + "]" * 100_000, "deep.yaml"),
    ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 70)), "deep.yaml"),
])
def test_yaml_nested_too_deep_is_refused(text: str, source: str) -> None:
    elapsed, _ = _refused(lambda: parse_document(text, source),
                          r"line \d+ column \d+: nested deeper than 64 levels")
    assert elapsed < FAST


def test_json_nested_too_deep_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(InvalidInput, match=r"^upload is nested deeper than 64 levels"):
        import_bytes(("[" * 100_000 + "]" * 100_000).encode(), "upload")
    with pytest.raises(InvalidInput, match=r"^p.json is nested deeper than 64 levels"):
        parse_document("[" * 65 + "]" * 65, "p.json")
    assert parse_document("[" * 64 + "]" * 64, "p.json") is not None


async def test_sync_reports_an_aliased_file_and_applies_nothing(
        runtime: Runtime, people: dict[str, Principal], tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("name: Fine\n")
    (tmp_path / "laughs.yaml").write_text(BILLION_LAUGHS)
    report = await runtime.personas.sync_folder(people["admin"], tmp_path)
    assert not report.applied
    (invalid,) = report.invalid
    assert invalid["source"] == "laughs.yaml"
    assert "YAML aliases (*a) are not accepted" in invalid["message"]


async def test_sync_validates_files_off_the_event_loop(
        runtime: Runtime, people: dict[str, Principal], tmp_path: Path) -> None:
    silent_loops = ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
                    "{% endfor %}")
    (tmp_path / "slow.yaml").write_text(json.dumps({"name": "Slow",
                                                    "prompt_template": silent_loops}))
    sync = asyncio.create_task(runtime.personas.sync_folder(people["admin"], tmp_path))
    await asyncio.wait({sync}, timeout=0.25)
    assert not sync.done()  # the loop is free while the template renders (up to 1 s)
    (invalid,) = (await sync).invalid
    assert invalid["errors"][0]["path"] == "prompt_template"
    assert "took longer than 1 s" in invalid["errors"][0]["message"]


# ---------------------------------------------------------------------------- CHARX


def _charx(inflated: int, declared: int | None = None) -> bytes:
    """A CHARX whose card.json inflates to ``inflated`` bytes, its zip entries claiming
    ``declared`` (both the local header and the central directory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("card.json", "w", force_zip64=False) as member:
        block = b" " * (1024 * 1024)
        for _ in range(inflated // len(block)):
            member.write(block)
    data = bytearray(out.getvalue())
    if declared is not None:
        struct.pack_into("<I", data, 22, declared)  # local header: uncompressed size
        struct.pack_into("<I", data, data.rfind(b"PK\x01\x02") + 24, declared)
    return bytes(data)


def test_a_charx_lying_about_its_size_is_stopped_early_with_little_memory() -> None:
    bomb = _charx(64 * 1024 * 1024, declared=1000)
    assert len(bomb) < 1024 * 1024
    elapsed, peak = _refused(lambda: import_card(bomb), r"^CHARX archive could not be read")
    assert elapsed < FAST
    assert peak < LITTLE_MEMORY


def test_a_charx_card_larger_than_the_bound_is_refused_before_inflating() -> None:
    honest = _charx(MAX_CARD_JSON_BYTES + 1024 * 1024)
    elapsed, peak = _refused(lambda: read_charx(honest),
                             r"^CHARX card.json inflates to more than 16,777,216 bytes")
    assert elapsed < FAST
    assert peak < LITTLE_MEMORY


def test_a_charx_listing_too_many_files_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for index in range(10_001):
            archive.writestr(f"assets/{index}", b"")
    with pytest.raises(InvalidInput, match=r"lists more than 10,000 files"):
        read_charx(out.getvalue())


# ------------------------------------------------------------------------------ PNG


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG header claiming ``width`` x ``height`` with (almost) no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_a_png_declaring_too_many_pixels_is_not_decoded() -> None:
    elapsed, _ = _refused(lambda: import_card(_png_declaring(8000, 8000)),
                          r"^PNG is 8000x8000 pixels; at most 16,777,216 pixels are read")
    assert elapsed < FAST


def test_a_compressed_text_chunk_is_inflated_with_a_cap() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("chara", "A" * (30 * 1024 * 1024), zip=True)
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="PNG", pnginfo=info)
    with pytest.raises(InvalidInput, match=r"^PNG is not a readable image: .*too large"):
        import_card(out.getvalue())


def test_card_json_nested_too_deep_is_refused() -> None:
    deep: object = "leaf"
    for _ in range(100):
        deep = [deep]
    card = {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": "Deep", "extensions": {"deep": deep}}}
    with pytest.raises(InvalidInput, match=r"^the Character Card is nested deeper than 64"):
        import_card(json.dumps(card).encode())
