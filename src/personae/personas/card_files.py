"""Containers that carry Character Cards: PNG text chunks and CHARX zip archives.

This module only moves bytes in and out of containers; turning the card JSON into a
persona is the job of :mod:`personae.personas.cards`. Every failure to read a
container is raised as :class:`InvalidInput` so callers see a message, not a
Pillow or zipfile traceback. Nothing is trusted from a header: a PNG is refused before
it is decoded if it declares more than ``MAX_CARD_PIXELS``, its text chunks are
inflated with a cap, and a CHARX ``card.json`` is inflated in small steps, stopped as
soon as more than ``MAX_CARD_JSON_BYTES`` come out, whatever its zip entry declares.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin, UnidentifiedImageError

from personae.errors import InvalidInput

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
CARD_CHUNKS = ("ccv3", "chara")  # in order of preference on import
CHARX_CARD = "card.json"

MAX_CARD_JSON_BYTES = 16 * 1024 * 1024  # a card's JSON, as inflated
MAX_CARD_PIXELS = 4096 * 4096  # a PNG declaring more is not decoded
MAX_CHARX_FILES = 10_000  # entries a CHARX archive may list
# Cards with embedded lorebooks easily exceed Pillow's 1 MiB text-chunk default; a card
# chunk is base64 (4/3 of the JSON), and a PNG carries a V2 and a V3 copy.
_TEXT_CHUNK_LIMIT = MAX_CARD_JSON_BYTES * 3 // 2
_TEXT_MEMORY_LIMIT = 2 * _TEXT_CHUNK_LIMIT
_READ_STEP = 64 * 1024
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
_PLACEHOLDER_SIZE = (400, 600)
_LIMITS_LOCK = threading.Lock()


@dataclass
class CharxContents:
    """The card JSON of a CHARX archive and how many other files it held."""

    card_json: bytes
    asset_count: int


@contextmanager
def _big_text_chunks() -> Iterator[None]:
    """Raise Pillow's text-chunk limits for one read, then put them back."""
    with _LIMITS_LOCK:  # the limits are module globals shared by every thread
        saved = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
        PngImagePlugin.MAX_TEXT_CHUNK = max(saved[0], _TEXT_CHUNK_LIMIT)
        PngImagePlugin.MAX_TEXT_MEMORY = max(saved[1], _TEXT_MEMORY_LIMIT)
        try:
            yield
        finally:
            PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY = saved


def _open_image(content: bytes, what: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(content))  # reads the header only
        width, height = image.size
        if width * height > MAX_CARD_PIXELS:
            raise InvalidInput(f"{what} is {width}x{height} pixels; at most "
                               f"{MAX_CARD_PIXELS:,} pixels are read")
        image.load()
    except UnidentifiedImageError:
        raise InvalidInput(f"{what} is not a readable image") from None
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"{what} is not a readable image: {exc}") from None
    return image


def read_png_text(content: bytes) -> dict[str, str]:
    """All text chunks of a PNG, keys lower-cased so ``Chara`` is found too.

    Text chunks may follow the image data, so the image is decoded fully.
    """
    with _big_text_chunks():
        image = _open_image(content, "PNG")
        texts = getattr(image, "text", {})
    return {str(key).lower(): str(value) for key, value in texts.items()}


def card_chunk(content: bytes) -> tuple[str, bytes]:
    """The preferred card chunk of a PNG as ``(name, decoded bytes)``; ``ccv3`` wins."""
    texts = read_png_text(content)
    name = next((name for name in CARD_CHUNKS if name in texts), None)
    if name is None:
        raise InvalidInput("PNG has no Character Card data (no 'chara' or 'ccv3' text chunk)")
    compact = "".join(texts[name].split())  # some writers wrap the base64 text
    try:
        return name, base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"PNG chunk '{name}' is not valid base64") from None


def write_png_text(image: bytes | None, chunks: dict[str, str], initials: str) -> bytes:
    """Return ``image`` as a PNG carrying ``chunks``, replacing any older card chunks.

    Other text chunks of the image (e.g. generation parameters) are kept. With no
    image, a placeholder showing ``initials`` is drawn.
    """
    picture = _open_image(image, "image") if image is not None else placeholder(initials)
    info = PngImagePlugin.PngInfo()
    for key, value in getattr(picture, "text", {}).items():
        if key.lower() not in CARD_CHUNKS and key.lower() not in chunks:
            info.add_text(key, value)
    for key, value in chunks.items():
        info.add_text(key, value)
    if picture.mode not in _PNG_MODES:
        picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
    out = io.BytesIO()
    picture.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def placeholder(initials: str) -> Image.Image:
    """A plain 400x600 portrait so a persona without an avatar still exports a card."""
    picture = Image.new("RGB", _PLACEHOLDER_SIZE, (52, 73, 94))
    draw = ImageDraw.Draw(picture)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.load_default(size=160)
    except (OSError, TypeError):  # Pillow built without FreeType
        font = ImageFont.load_default()
    centre = (_PLACEHOLDER_SIZE[0] // 2, _PLACEHOLDER_SIZE[1] // 2)
    try:
        draw.text(centre, initials, fill=(236, 240, 241), font=font, anchor="mm")
    except (UnicodeError, ValueError, OSError):  # a glyph the fallback font lacks
        draw.text(centre, "?", fill=(236, 240, 241), font=font, anchor="mm")
    return picture


def read_charx(content: bytes) -> CharxContents:
    """``card.json`` from the root of a CHARX archive; assets are only counted."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            files = [info for info in archive.infolist() if not info.is_dir()]
            if len(files) > MAX_CHARX_FILES:
                raise InvalidInput(f"CHARX archive lists more than {MAX_CHARX_FILES:,} files")
            card = next((info for info in files if info.filename == CHARX_CARD), None)
            if card is None:
                raise InvalidInput("CHARX archive has no card.json at its root")
            card_json = _read_capped(archive, card, MAX_CARD_JSON_BYTES)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError,
            NotImplementedError, zlib.error) as exc:
        raise InvalidInput(f"CHARX archive could not be read: {exc}") from None
    return CharxContents(card_json=card_json, asset_count=len(files) - 1)


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, inflated a step at a time and stopped past ``limit``."""
    too_large = InvalidInput(f"CHARX {info.filename} inflates to more than {limit:,} bytes")
    if info.file_size > limit:
        raise too_large
    chunks: list[bytes] = []
    produced = 0
    with archive.open(info) as member:
        while chunk := member.read(_READ_STEP):
            produced += len(chunk)
            if produced > limit:
                raise too_large
            chunks.append(chunk)
    return b"".join(chunks)
