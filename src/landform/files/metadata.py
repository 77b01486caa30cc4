"""Where a photo was taken, and with what, removed from every raster image
before it is stored and served to the world: EXIF (GPS, camera, serial
numbers), XMP, IPTC and text comments.

JPEG, PNG and WebP lose those segments or chunks without re-encoding (their
colour profiles stay). An EXIF orientation is applied to the pixels first,
as browsers would have applied it: the image looks as it did. AVIF keeps its
metadata in items of its ISO box tree; one that has any is re-encoded."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps

from landform.files.kinds import Kind

ORIENTATION = 0x0112
# PNG chunks that say who, where or when, not how to draw the image.
_PNG_METADATA = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"})
_WEBP_METADATA = frozenset({b"EXIF", b"XMP "})
# VP8X flags: the file has EXIF, XMP chunks.
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def strip_metadata(path: Path, kind: Kind) -> bool:
    """Remove ``path``'s metadata in place; whether its bytes changed."""
    if kind.mime == "image/jpeg":
        return _strip_jpeg(path)
    if kind.mime == "image/png":
        return _rotated(path, "PNG", {}) or _strip_chunks(path, _png_kept)
    if kind.mime == "image/webp":
        return _rotated(path, "WEBP", {"lossless": _webp_lossless(path)}) or _strip_chunks(
            path, _webp_kept
        )
    if kind.mime == "image/avif":
        return _reencoded_avif(path)
    return False


def _rotated(path: Path, format_: str, options: dict[str, object]) -> bool:
    """A still image with an EXIF orientation other than "upright", saved
    upright without its metadata (Pillow writes none unless asked)."""
    with Image.open(path) as image:
        if getattr(image, "n_frames", 1) > 1 or image.getexif().get(ORIENTATION, 1) in (None, 1):
            return False
        upright = ImageOps.exif_transpose(image)
        icc = image.info.get("icc_profile")
        upright.save(path, format_, icc_profile=icc, **options)
    return True


def _strip_jpeg(path: Path) -> bool:
    """Drop APP1 (EXIF, XMP), APP12, APP13 (IPTC) and COM segments, keeping
    JFIF, ICC profiles and Adobe colour information."""
    data = path.read_bytes()
    with Image.open(path) as image:
        orientation = image.getexif().get(ORIENTATION, 1)
        if orientation not in (None, 1):
            rotated = ImageOps.exif_transpose(image)
            icc = image.info.get("icc_profile")
            rotated.save(path, "JPEG", quality=92, optimize=True, icc_profile=icc)
            data = path.read_bytes()
    out = bytearray(data[:2])
    offset = 2
    changed = False
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        length = struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        segment = data[offset : offset + 2 + length]
        if marker in (0xE1, 0xEC, 0xED, 0xFE):
            changed = True
        else:
            out += segment
        offset += 2 + length
    if not changed:
        return orientation not in (None, 1)
    out += data[offset:]
    path.write_bytes(bytes(out))
    return True


def _strip_chunks(path: Path, kept: Callable[[bytes], bytes]) -> bool:
    data = path.read_bytes()
    out = kept(data)
    if out == data:
        return False
    path.write_bytes(out)
    return True


def _png_kept(data: bytes) -> bytes:
    """The PNG without its metadata chunks (each chunk carries its own CRC,
    so the rest stays valid as it is). The file was checked whole before."""
    out = bytearray(data[:8])
    offset = 8
    while offset + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 12 + length
        if chunk_type not in _PNG_METADATA:
            out += data[offset:end]
        offset = end
    return bytes(out)


def _webp_kept(data: bytes) -> bytes:
    """The WebP (RIFF) without its EXIF and XMP chunks, their flags cleared
    in the extended header and the RIFF size made to fit."""
    body = bytearray()
    offset = 12
    while offset + 8 <= len(data):
        chunk_type = data[offset : offset + 4]
        size = struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        end = offset + 8 + size + (size & 1)
        chunk = bytearray(data[offset:end])
        if chunk_type == b"VP8X":
            chunk[8] &= ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
        if chunk_type not in _WEBP_METADATA:
            body += chunk
        offset = end
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + bytes(body)


def _webp_lossless(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(64)
    return b"VP8L" in head


def _reencoded_avif(path: Path) -> bool:
    with Image.open(path) as image:
        if not image.getexif() and "xmp" not in image.info:
            return False
        frames = getattr(image, "n_frames", 1)
        icc = image.info.get("icc_profile")
        if frames > 1:
            image.save(path, "AVIF", save_all=True, quality=90, icc_profile=icc)
        else:
            ImageOps.exif_transpose(image).save(path, "AVIF", quality=90, icc_profile=icc)
    return True
