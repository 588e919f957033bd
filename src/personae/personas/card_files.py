"""Containers that carry Character Cards: PNG text chunks and CHARX zip archives.

This module only moves bytes in and out of containers; turning the card JSON into a
persona is the job of :mod:`personae.personas.cards`. Every failure to read a
container is raised as :class:`InvalidInput` so callers see a message, not a
Pillow or zipfile traceback. Nothing is trusted from a header: a PNG is refused before
it is decoded if it declares more than ``MAX_CARD_PIXELS``, its text chunks are
inflated with a cap, its chunks are walked with every length and CRC checked, and a
CHARX file is inflated in small steps, stopped as soon as more than its cap comes out
(``MAX_CARD_JSON_BYTES`` for ``card.json``, ``MAX_CHARX_MEMBER_BYTES`` for an asset,
``MAX_CHARX_TOTAL_BYTES`` for all of them), whatever its zip entry declares.
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
PLACEHOLDER_CHUNK = "personae-placeholder"  # on a drawn placeholder: not an avatar
ASSET_CHUNK_PREFIX = "chara-ext-asset_"  # RisuAI: chara-ext-asset_:N holds asset N, base64

MAX_CARD_JSON_BYTES = 16 * 1024 * 1024  # a card's JSON, as inflated
MAX_CARD_PIXELS = 4096 * 4096  # a PNG declaring more is not decoded
MAX_CHARX_FILES = 10_000  # entries a CHARX archive may list
MAX_CHARX_MEMBER_BYTES = 16 * 1024 * 1024  # one CHARX file, as inflated
MAX_CHARX_TOTAL_BYTES = 64 * 1024 * 1024  # all the CHARX files read, as inflated
MAX_PNG_CHUNKS = 100_000
_MAX_CHUNK_LENGTH = 2**31 - 1  # the PNG spec's bound
_TEXT_TYPES = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_IEND = b"\0\0\0\0IEND\xaeB`\x82"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # a fixed time: the same card gives the same archive
# Cards with embedded lorebooks easily exceed Pillow's 1 MiB text-chunk default; a card
# chunk is base64 (4/3 of the JSON), and a PNG carries a V2 and a V3 copy.
_TEXT_CHUNK_LIMIT = MAX_CARD_JSON_BYTES * 3 // 2
_TEXT_MEMORY_LIMIT = 2 * _TEXT_CHUNK_LIMIT
_READ_STEP = 64 * 1024
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")  # what is ever decoded
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
_PLACEHOLDER_SIZE = (400, 600)
_LIMITS_LOCK = threading.Lock()


@dataclass
class CharxContents:
    """The card JSON of a CHARX archive and the names of its other files."""

    card_json: bytes
    names: list[str]

    @property
    def asset_count(self) -> int:
        return len(self.names)


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


def open_image(content: bytes, what: str) -> Image.Image:
    """Decode an image of one of ``IMAGE_FORMATS``, refused past ``MAX_CARD_PIXELS``."""
    try:
        image = Image.open(io.BytesIO(content), formats=IMAGE_FORMATS)  # the header only
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


def looks_like_image(content: bytes) -> bool:
    """Whether the bytes start like one of ``IMAGE_FORMATS`` (nothing is decoded)."""
    try:
        with Image.open(io.BytesIO(content), formats=IMAGE_FORMATS):
            return True
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def image_media_type(image: Image.Image) -> str:
    return Image.MIME.get(image.format or "", "application/octet-stream")


def read_png_text(content: bytes) -> dict[str, str]:
    """All text chunks of a PNG, keys lower-cased so ``Chara`` is found too.

    Text chunks may follow the image data, so the image is decoded fully.
    """
    with _big_text_chunks():
        image = open_image(content, "PNG")
        texts = getattr(image, "text", {})
    return {str(key).lower(): str(value) for key, value in texts.items()}


def card_chunk(content: bytes) -> tuple[str, bytes]:
    """The preferred card chunk of a PNG as ``(name, decoded bytes)``; ``ccv3`` wins."""
    return card_chunks(read_png_text(content))


def card_chunks(texts: dict[str, str]) -> tuple[str, bytes]:
    """The preferred card chunk among a PNG's text chunks, decoded."""
    name = next((name for name in CARD_CHUNKS if name in texts), None)
    if name is None:
        raise InvalidInput("PNG has no Character Card data (no 'chara' or 'ccv3' text chunk)")
    return name, decode_base64(texts[name], f"PNG chunk '{name}'")


def decode_base64(text: str, what: str) -> bytes:
    compact = "".join(text.split())  # some writers wrap the base64 text
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what} is not valid base64") from None


def write_png_text(image: bytes | None, chunks: dict[str, str], initials: str) -> bytes:
    """Return ``image`` as a PNG carrying ``chunks``, replacing any older card chunks.

    A PNG is kept byte for byte: the chunks are inserted before ``IEND`` and only card
    chunks are taken out (see :func:`png_chunks`). Another format is converted to PNG
    once. With no image, a placeholder showing ``initials`` is drawn.
    """
    if image is not None and image.startswith(PNG_MAGIC):
        open_image(image, "image")  # readable, within the pixel bound
        return insert_text_chunks(image, chunks)
    picture = open_image(image, "image") if image is not None else placeholder(initials)
    if picture.mode not in _PNG_MODES:
        picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
    info = PngImagePlugin.PngInfo()
    if image is None:  # marked, so importing the card again gives no avatar
        info.add_text(PLACEHOLDER_CHUNK, "1")
    out = io.BytesIO()
    picture.save(out, format="PNG", pnginfo=info)
    return insert_text_chunks(out.getvalue(), chunks)


# -- PNG at the chunk level ----------------------------------------------------------
# Pillow re-encodes pixels, so an image it saves is never the image it was given. The
# chunk layout is small and fully specified (PNG spec, section 5: length, type, data,
# CRC-32), and the one maintained pure-Python PNG library (pypng) has seen no release
# since 2022, so chunks are walked here: every chunk but the card's own is kept as read.


@dataclass(frozen=True, slots=True)
class PngChunk:
    type: bytes
    data: bytes
    raw: bytes  # length, type, data and CRC exactly as read

    @property
    def keyword(self) -> str | None:
        """The lower-cased keyword of a text chunk (tEXt, zTXt, iTXt), else None."""
        if self.type not in _TEXT_TYPES:
            return None
        return self.data.split(b"\0", 1)[0].decode("latin-1").lower()

    @property
    def is_card(self) -> bool:
        keyword = self.keyword
        return keyword is not None and (keyword in CARD_CHUNKS
                                        or keyword.startswith(ASSET_CHUNK_PREFIX))


def png_chunks(content: bytes) -> list[PngChunk]:
    """Every chunk of a PNG up to ``IEND``, each checked (CRC, bounds); bytes after
    ``IEND`` are not part of the image and are left out."""
    if not content.startswith(PNG_MAGIC):
        raise InvalidInput("not a PNG image")
    chunks: list[PngChunk] = []
    position = len(PNG_MAGIC)
    while not chunks or chunks[-1].type != b"IEND":
        if len(chunks) >= MAX_PNG_CHUNKS:
            raise InvalidInput(f"PNG has more than {MAX_PNG_CHUNKS:,} chunks")
        chunk = _chunk_at(content, position)
        chunks.append(chunk)
        position += len(chunk.raw)
    if chunks[0].type != b"IHDR":
        raise InvalidInput("PNG does not start with its IHDR chunk")
    return chunks


def _chunk_at(content: bytes, position: int) -> PngChunk:
    header = content[position:position + 8]
    if len(header) < 8:
        raise InvalidInput("PNG is truncated (no IEND chunk)")
    length = int.from_bytes(header[:4], "big")
    kind = header[4:]
    if length > _MAX_CHUNK_LENGTH or not kind.isalpha():
        raise InvalidInput("PNG has a malformed chunk")
    end = position + 12 + length
    if end > len(content):
        raise InvalidInput("PNG is truncated inside a chunk")
    data = content[position + 8:end - 4]
    if zlib.crc32(kind + data) != int.from_bytes(content[end - 4:end], "big"):
        raise InvalidInput(f"PNG chunk {kind.decode('ascii')} fails its CRC check")
    return PngChunk(kind, data, content[position:end])


def text_chunk(keyword: str, text: str) -> bytes:
    """A ``tEXt`` chunk (Latin-1; card chunks are base64, so ASCII)."""
    data = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
    kind = b"tEXt"
    crc = zlib.crc32(kind + data).to_bytes(4, "big")
    return len(data).to_bytes(4, "big") + kind + data + crc


def strip_card_chunks(content: bytes) -> bytes:
    """The PNG without its card chunks (the card's image, every other byte kept)."""
    return PNG_MAGIC + b"".join(c.raw for c in png_chunks(content) if not c.is_card)


def insert_text_chunks(content: bytes, texts: dict[str, str]) -> bytes:
    """The PNG with ``texts`` as tEXt chunks before ``IEND``, older card chunks (and
    chunks of the same keywords) removed, every other chunk kept byte for byte."""
    replaced = {key.lower() for key in texts}
    kept = [c.raw for c in png_chunks(content)
            if c.type != b"IEND" and not c.is_card and c.keyword not in replaced]
    added = [text_chunk(key, value) for key, value in texts.items()]
    return PNG_MAGIC + b"".join(kept) + b"".join(added) + _IEND


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
    """``card.json`` from the root of a CHARX archive, and the names of its other files."""
    with _charx(content) as archive:
        files = [info for info in archive.infolist() if not info.is_dir()]
        if len(files) > MAX_CHARX_FILES:
            raise InvalidInput(f"CHARX archive lists more than {MAX_CHARX_FILES:,} files")
        card = next((info for info in files if info.filename == CHARX_CARD), None)
        if card is None:
            raise InvalidInput("CHARX archive has no card.json at its root")
        card_json = _read_capped(archive, card, MAX_CARD_JSON_BYTES)
    return CharxContents(card_json, [i.filename for i in files if i.filename != CHARX_CARD])


def read_charx_files(content: bytes, names: list[str]) -> dict[str, bytes]:
    """The named files of a CHARX archive, each and all together inflated with a cap."""
    found: dict[str, bytes] = {}
    budget = MAX_CHARX_TOTAL_BYTES
    with _charx(content) as archive:
        for name in dict.fromkeys(names):
            data = _read_capped(archive, archive.getinfo(name),
                                min(MAX_CHARX_MEMBER_BYTES, budget))
            budget -= len(data)
            found[name] = data
    return found


@contextmanager
def _charx(content: bytes) -> Iterator[zipfile.ZipFile]:
    """The archive, with every failure to read it as one :class:`InvalidInput`."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            yield archive
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError,
            NotImplementedError, zlib.error, KeyError) as exc:
        raise InvalidInput(f"CHARX archive could not be read: {exc}") from None


def write_charx(card_json: bytes, files: dict[str, bytes]) -> bytes:
    """A CHARX archive: ``card.json`` at the root and ``files`` at their paths."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in {CHARX_CARD: card_json, **files}.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), data,
                             compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


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
