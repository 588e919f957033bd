"""Character Cards made here for the tests, from small generated images (no third-party
card is copied): V1 with a tool's ``metadata``, V2 as JSON and PNG, V3 as PNG with
``ccv3`` and ``chara`` and a lorebook using RisuAI decorators, a RisuAI PNG with
``chara-ext-asset_:N`` chunks, and a CHARX with an icon, two emotions and a background.

The PNG helpers here walk chunks on their own (not with the code under test), so a
test comparing chunks does not take the exporter's word for them.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import random
import struct
import zipfile
import zlib
from typing import Any

from PIL import Image, PngImagePlugin

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("chara", "ccv3")


def image_png(size: tuple[int, int] = (6, 9), colour: tuple[int, int, int] = (200, 40, 90),
              texts: dict[str, str] | None = None) -> bytes:
    """A small PNG with a gradient (so the pixels are not trivial), a ``pHYs`` chunk and
    any ``texts`` (non-card text chunks, such as generation parameters)."""
    picture = Image.new("RGB", size, colour)
    for x in range(size[0]):
        picture.putpixel((x, 0), (x * 20 % 256, 10, 250))
    info = PngImagePlugin.PngInfo()
    for key, value in (texts or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    picture.save(out, format="PNG", pnginfo=info, dpi=(72, 72))
    return out.getvalue()


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: about ``3 * side * side`` bytes."""
    picture = Image.frombytes("RGB", (side, side), random.Random(side).randbytes(3 * side * side))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def image_jpeg(size: tuple[int, int] = (5, 7)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 30)).save(out, format="JPEG")
    return out.getvalue()


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk as (type, raw bytes with length and CRC), up to IEND."""
    assert png.startswith(PNG_MAGIC)
    found, position = [], len(PNG_MAGIC)
    while True:
        (length,) = struct.unpack(">I", png[position:position + 4])
        kind = png[position + 4:position + 8]
        end = position + 12 + length
        found.append((kind, png[position:end]))
        position = end
        if kind == b"IEND":
            return found


def _keyword(kind: bytes, raw: bytes) -> str | None:
    if kind not in (b"tEXt", b"zTXt", b"iTXt"):
        return None
    return raw[8:].split(b"\0", 1)[0].decode("latin-1").lower()


def is_card_chunk(kind: bytes, raw: bytes) -> bool:
    keyword = _keyword(kind, raw)
    return keyword is not None and (keyword in CARD_KEYWORDS
                                    or keyword.startswith("chara-ext-asset_"))


def image_chunks(png: bytes) -> list[bytes]:
    """The chunks that are the image (every chunk but a card's), byte for byte."""
    return [raw for kind, raw in chunks(png) if not is_card_chunk(kind, raw)]


def text_chunks(png: bytes) -> dict[str, str]:
    """The tEXt chunks, by keyword."""
    texts = {}
    for kind, raw in chunks(png):
        if kind == b"tEXt":
            keyword, _, text = raw[8:-4].partition(b"\0")
            texts[keyword.decode("latin-1")] = text.decode("latin-1")
    return texts


def _text_chunk(keyword: str, text: str) -> bytes:
    data = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
    return struct.pack(">I", len(data)) + b"tEXt" + data + \
        struct.pack(">I", zlib.crc32(b"tEXt" + data))


def with_texts(png: bytes, texts: dict[str, str]) -> bytes:
    """``png`` with tEXt chunks added just before IEND."""
    body = b"".join(raw for kind, raw in chunks(png) if kind != b"IEND")
    added = b"".join(_text_chunk(key, value) for key, value in texts.items())
    return PNG_MAGIC + body + added + chunks(png)[-1][1]


def b64(value: Any) -> str:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> Any:
    return json.loads(base64.b64decode(text))


# -- the cards --------------------------------------------------------------------

V1: dict[str, Any] = {
    "name": "Orla Finch",
    "description": "A lighthouse keeper on a northern island.",
    "personality": "patient, wry",
    "scenario": "A stormy night at the lighthouse.",
    "first_mes": "You made it up the stairs. Tea?",
    "mes_example": "<START>\n{{user}}: Is it always this windy?\n{{char}}: Only on days "
                   "ending in y.",
    "metadata": {"version": 1, "created": 1690000000000, "tool": {"name": "CardForge",
                                                                 "version": "0.3"}},
    "create_date": "2023-7-22 @10h 12m",
    "talkativeness": "0.6",
}

V2: dict[str, Any] = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Bram Oakes", "description": "A retired cartographer.",
        "personality": "meticulous", "scenario": "His cluttered study.",
        "first_mes": "Mind the maps on the floor.",
        "mes_example": "<START>\n{{user}}: Where is this?\n{{char}}: Nowhere, yet.",
        "creator_notes": "Made for tests.", "system_prompt": "Speak as {{char}}.",
        "post_history_instructions": "", "alternate_greetings": ["Ah, a visitor."],
        "tags": ["maps", "retired"], "creator": "tests", "character_version": "2",
        "character_book": {"name": "Study", "extensions": {}, "entries": [
            {"keys": ["atlas"], "content": "The atlas is unfinished.", "extensions": {},
             "enabled": True, "insertion_order": 10}]},
        "extensions": {"talkativeness": "0.4", "fav": True, "world": "Study"},
    },
}

V3: dict[str, Any] = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {
        "name": "Ione Vale", "description": "A botanist who talks to her ferns.",
        "personality": "curious", "scenario": "A greenhouse at noon.",
        "first_mes": "Careful, that one bites.", "mes_example": "",
        "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
        "alternate_greetings": [], "tags": ["plants"], "creator": "tests",
        "character_version": "3.1",
        "extensions": {"risuai": {"source": ["https://example.org/ione"]}, "depth_prompt": {
            "prompt": "Smell of soil.", "depth": 4}},
        "group_only_greetings": ["Hello, all of you."],
        "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        "nickname": "Io",
        "creator_notes_multilingual": {"de": "Für Tests."},
        "source": ["https://example.org/ione-card"],
        "creation_date": 1700000000,
        "modification_date": 1700000900,
        "character_book": {"name": "Greenhouse", "extensions": {}, "entries": [
            {"keys": ["fern"], "content": "@@depth 0\n@@role system\nThe fern is named Ada.",
             "extensions": {}, "enabled": True, "insertion_order": 0, "use_regex": False},
            {"keys": ["/orchids?/"], "content": "@@@SYSTEM\nOrchids need little water.",
             "extensions": {}, "enabled": True, "insertion_order": 1, "use_regex": True},
            {"keys": ["soil"], "content": "The soil is peat-free.", "extensions": {},
             "enabled": True, "insertion_order": 2, "use_regex": False},
        ]},
    },
}


def v3_png(image: bytes | None = None) -> bytes:
    """A V3 PNG card as V3 writers make it: ``ccv3`` and a V2 ``chara`` next to it."""
    v2 = {"spec": "chara_card_v2", "spec_version": "2.0",
          "data": {k: v for k, v in copy.deepcopy(V3["data"]).items()
                   if k not in ("group_only_greetings", "assets", "nickname", "source",
                                "creator_notes_multilingual", "creation_date",
                                "modification_date")}}
    return with_texts(image or image_png(texts={"parameters": "seed 7"}),
                      {"chara": b64(v2), "ccv3": b64(V3)})


def v2_png(image: bytes | None = None) -> bytes:
    return with_texts(image or image_png(texts={"Software": "tests"}), {"chara": b64(V2)})


def risu_png() -> tuple[bytes, dict[str, bytes]]:
    """A RisuAI-style PNG: assets in ``chara-ext-asset_:N`` chunks named ``__asset:N``.
    Returns the card and the asset files by name."""
    happy, sad = image_png((3, 3), (250, 220, 0)), image_png((3, 3), (0, 0, 200))
    card = copy.deepcopy(V3)
    card["data"]["assets"] = [
        {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"},
        {"type": "emotion", "uri": "__asset:0", "name": "happy", "ext": "png"},
        {"type": "emotion", "uri": "__asset:1", "name": "sad", "ext": "png"},
    ]
    png = with_texts(image_png(), {"ccv3": b64(card), "chara-ext-asset_:0": b64(happy),
                                   "chara-ext-asset_:1": b64(sad)})
    return png, {"happy": happy, "sad": sad}


CHARX_FILES = {
    "assets/icon/images/main.png": image_png((8, 8), (90, 90, 90)),
    "assets/emotion/images/joy.png": image_png((4, 4), (255, 200, 0)),
    "assets/emotion/images/gloom.webp": b"",  # filled in below
    "assets/background/images/greenhouse.jpg": image_jpeg((10, 6)),
}


def _webp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 40, 160)).save(out, format="WEBP", lossless=True)
    return out.getvalue()


CHARX_FILES["assets/emotion/images/gloom.webp"] = _webp()


def charx_card() -> dict[str, Any]:
    card = copy.deepcopy(V3)
    card["data"]["assets"] = [
        {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main",
         "ext": "png"},
        {"type": "emotion", "uri": "embeded://assets/emotion/images/joy.png", "name": "joy",
         "ext": "png"},
        {"type": "emotion", "uri": "embeded://assets/emotion/images/gloom.webp",
         "name": "gloom", "ext": "webp"},
        {"type": "background", "uri": "embeded://assets/background/images/greenhouse.jpg",
         "name": "greenhouse", "ext": "jpg"},
    ]
    return card


def charx(extra: dict[str, bytes] | None = None) -> bytes:
    """A CHARX archive of :func:`charx_card` with its four files (and ``extra`` ones)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", json.dumps(charx_card()))
        for name, data in {**CHARX_FILES, **(extra or {})}.items():
            archive.writestr(name, data)
    return out.getvalue()


def zip_files(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
