"""Hostile-file checks: each allowed kind is parsed enough to know it is
what it claims, whole, not something else besides, and safe to serve.

Raster images are opened with Pillow after their dimensions and frame
counts are checked (decompression and frame bombs are refused before any
pixel is decoded; a GIF's frames are counted from its block structure, see
``gif``), then decoded fully (truncation shows). Bytes after an image's end mark a polyglot. Then
their metadata (EXIF, GPS, XMP, IPTC, comments) goes (see ``metadata``). SVG that
could run, fetch or navigate is refused (see ``svg``); so are PDFs with scripts or
launch/embedded-file actions. Videos are checked box by box (MP4) or by
their element sizes (WebM) against the file's real length."""

from __future__ import annotations

import mmap
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from landform.files import gif, svg
from landform.files.errors import FileErrorCode, UnsupportedFile, refuse
from landform.files.kinds import Kind
from landform.files.metadata import strip_metadata

_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Inspection:
    width: int | None = None
    height: int | None = None
    rewritten: bool = False  # the file's bytes were changed (metadata removed)


def inspect_file(path: Path, kind: Kind, max_pixels: int, max_frames: int) -> Inspection:
    """Check (and where needed neutralise, in place) a file of the given kind."""
    if kind.mime == "image/svg+xml":
        width, height = svg.inspect_svg(path.read_bytes())
        return Inspection(width=width, height=height)
    if kind.mime == "application/pdf":
        _inspect_pdf(path)
        return Inspection()
    if kind.mime == "video/mp4":
        _inspect_mp4(path)
        return Inspection()
    if kind.mime == "video/webm":
        _inspect_webm(path)
        return Inspection()
    return _inspect_raster(path, kind, max_pixels, max_frames)


# Raster images ----------------------------------------------------------------

_PILLOW_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/avif": "AVIF",
    "image/x-icon": "ICO",
}
_MARKUP = re.compile(rb"<\s*(script|html|body|iframe|svg|\?php)\b|javascript:", re.I)


def _inspect_raster(path: Path, kind: Kind, max_pixels: int, max_frames: int) -> Inspection:
    _refuse_markup(path)
    if kind.mime == "image/gif":
        # Before Pillow: its own frame count is the costly part.
        _check_gif(path, max_pixels, max_frames)
    else:
        _refuse_trailing_data(path, kind)
    expected = _PILLOW_FORMATS[kind.mime]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[expected]) as image:
                width, height = image.size
                # Read from a header by WebP, AVIF, APNG and MPO: cheap here.
                frames = getattr(image, "n_frames", 1)
                if frames > max_frames:
                    raise _too_many_frames(max_frames)
                _check_pixels(width, height, frames, max_pixels)
                # Decode every frame: truncated or corrupt data shows here.
                for index in range(frames):
                    image.seek(index)
                    image.load()
    except UnsupportedFile:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise refuse("the image's dimensions are too large", FileErrorCode.IMAGE_TOO_LARGE) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise refuse(
            f"the file is not a complete, valid {kind.extension.upper()} image",
            FileErrorCode.CORRUPT_FILE,
        ) from exc
    rewritten = strip_metadata(path, kind)
    if rewritten:  # turned upright, perhaps
        with Image.open(path) as image:
            width, height = image.size
    return Inspection(width=width, height=height, rewritten=rewritten)


def _check_pixels(width: int, height: int, frames: int, max_pixels: int) -> None:
    """Each frame is decoded onto the whole canvas: bound one, and all."""
    if width * height > max_pixels or width * height * frames > max_pixels * 4:
        raise refuse(
            f"the image is {width}×{height} pixels ({frames} frame(s)); "
            f"the limit is {max_pixels:,} pixels",
            FileErrorCode.IMAGE_TOO_LARGE,
        )


def _too_many_frames(max_frames: int) -> UnsupportedFile:
    return refuse(
        f"the image has more than {max_frames:,} frames",
        FileErrorCode.IMAGE_TOO_MANY_FRAMES,
        details={"limit": max_frames},
    )


def _check_gif(path: Path, max_pixels: int, max_frames: int) -> None:
    """Frame count, canvas and end of a GIF, from its blocks alone."""
    try:
        layout = gif.read_layout(path.read_bytes(), max_frames)
    except gif.TooManyFrames as exc:
        raise _too_many_frames(exc.limit) from exc
    except gif.ExtensionFlood as exc:
        raise refuse(f"GIF with {exc} is refused") from exc
    except gif.MalformedGif as exc:
        raise refuse(
            f"the file is not a complete, valid GIF image: {exc}", FileErrorCode.CORRUPT_FILE
        ) from exc
    if layout.end != path.stat().st_size:
        raise refuse(
            "the image does not end where its format says it ends (other data appended: "
            "a polyglot)",
            FileErrorCode.CORRUPT_FILE,
        )
    # Frames reaching past the logical screen grow the canvas every frame is
    # composed on: a 1×1 screen can still hold a frame of 65,535² pixels.
    _check_pixels(*layout.canvas, layout.frames, max_pixels)


def _refuse_markup(path: Path) -> None:
    """Markup where an image's header or tail should be: an HTML/image polyglot."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(2048)
        handle.seek(max(0, size - 2048))
        tail = handle.read()
    if _MARKUP.search(head) or _MARKUP.search(tail):
        raise refuse("the image carries markup or script: refused as a polyglot")


def _refuse_trailing_data(path: Path, kind: Kind) -> None:
    with path.open("rb") as handle:
        if kind.mime == "image/png":
            end = _png_end(handle)
        elif kind.mime == "image/jpeg":
            data = handle.read()
            end = len(data) if data.endswith(b"\xff\xd9") else -1
        elif kind.mime == "image/webp":
            header = handle.read(12)
            end = struct.unpack("<I", header[4:8])[0] + 8 if len(header) == 12 else -1
            end += end % 2  # RIFF chunks are padded to even length
        elif kind.mime == "image/avif":
            end = _iso_boxes_end(handle)
        else:
            return
    if end != path.stat().st_size:
        raise refuse(
            "the image does not end where its format says it ends (truncated, or other "
            "data appended: a polyglot)",
            FileErrorCode.CORRUPT_FILE,
        )


def _png_end(handle: BinaryIO) -> int:
    if handle.read(8) != b"\x89PNG\r\n\x1a\n":
        return -1
    offset = 8
    while True:
        header = handle.read(8)
        if len(header) < 8:
            return -1
        length, chunk_type = struct.unpack(">I4s", header)
        offset += 12 + int(length)
        handle.seek(offset)
        if chunk_type == b"IEND":
            return offset


# PDF ------------------------------------------------------------------------------

_PDF_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


def _pdf_name(name: bytes) -> bytes:
    """A pattern for the PDF name ``name`` however it is spelled: any of its
    characters may be written as a ``#xx`` escape (``/Java#53cript`` is
    ``/JavaScript``). Matching the spellings costs the regex engine one
    pass; undoing every escape first cost a Python call per escape, and a
    file of nothing but escapes took minutes of CPU."""
    spellings = []
    for char in name:
        # Hex digits in either case: ``#4a`` and ``#4A`` are both ``J``.
        escape = b"".join(
            b"[%c%c]" % (digit, digit - 32) if digit >= 0x61 else bytes([digit])
            for digit in b"%02x" % char
        )
        spellings.append(b"(?:%s|#%s)" % (re.escape(bytes([char])), escape))
    return b"".join(spellings)


_PDF_ACTIVE_NAMES = (
    b"JavaScript",
    b"JS",
    b"Launch",
    b"EmbeddedFiles",
    b"EmbeddedFile",
    b"RichMedia",
    b"XFA",
    b"SubmitForm",
)
_PDF_ACTIVE = re.compile(rb"/(" + b"|".join(map(_pdf_name, _PDF_ACTIVE_NAMES)) + rb")\b")


def _inspect_pdf(path: Path) -> None:
    with path.open("rb") as handle:
        if not handle.read(5) == b"%PDF-":
            raise refuse("not a PDF", FileErrorCode.TYPE_MISMATCH)
        handle.seek(0)
        carry = b""
        while chunk := handle.read(_CHUNK):
            _refuse_active(carry + chunk)
            carry = chunk[-64:]
        handle.seek(max(0, path.stat().st_size - 1024))
        if b"%%EOF" not in handle.read():
            raise refuse("the PDF is truncated (no %%EOF at its end)", FileErrorCode.CORRUPT_FILE)
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            _inspect_pdf_object_streams(data)


_PDF_STREAM = re.compile(rb"\bstream(?:\r\n|\n|\r)")
_PDF_OBJECT_STREAM = re.compile(rb"/" + _pdf_name(b"ObjStm") + rb"\b")
_PDF_FILTER_NAME = re.compile(rb"/" + _pdf_name(b"Filter") + rb"\b")
_PDF_FILTER = re.compile(_PDF_FILTER_NAME.pattern + rb"\s*(\[[^\]]*\]|/[^\s/\[\]<>()]+)")
# Compressed input fed to zlib at a time: an object stream is rarely more
# than some hundreds of kilobytes, and what follows its end is copied
# (``unused_data``), so a large slice per stream costs on files of many.
_INFLATE_INPUT = 64 * 1024
_PDF_NAME = re.compile(rb"/([^\s/\[\]<>()]+)")
_PDF_FLATE = {b"FlateDecode", b"Fl"}
# What the object streams of one PDF may inflate to, all told: the check's
# own cost stays bounded whatever a hostile file claims.
MAX_PDF_INFLATED = 64 * 1024 * 1024
# Streams one PDF may have. Each is an object of its own (``n 0 obj``, a
# dictionary, ``stream`` … ``endstream``): a real document of the upload
# size has some thousands; a file of nothing but ``stream`` keywords has a
# million, and looking at each costs a few microseconds.
MAX_PDF_STREAMS = 100_000


def _inspect_pdf_object_streams(data: mmap.mmap) -> None:
    """Objects may also sit compressed in object streams (``/Type
    /ObjStm``), out of sight of the plain scan: inflate each one and scan
    it too. (Page content streams draw; they cannot hold actions.)

    Which stream is an object stream is read off the bytes between it and
    the stream before it, not off a parsed dictionary: a dictionary's
    bounds are a reader's guess (a string may say ``obj`` or ``stream``,
    a length may lie), and any guess of ours could differ from a viewer's.
    So a stream is taken for one if ``/ObjStm`` is anywhere since the
    previous stream keyword (or was in the span before, when that span's
    "stream" had no filter: a ``stream`` inside a string would otherwise
    split a dictionary in two), and every ``/Filter`` in that span must be
    plain Flate, or the file is refused. The spans do not overlap: the
    file is read once however many streams it has."""
    budget = MAX_PDF_INFLATED
    since = 0
    carried = False  # /ObjStm seen in the span before, with no filter after it
    for count, match in enumerate(_PDF_STREAM.finditer(data), 1):
        if count > MAX_PDF_STREAMS:
            raise refuse(f"PDF with more than {MAX_PDF_STREAMS:,} streams is refused")
        span = (since, match.start())
        since = match.end()
        if not (carried or _PDF_OBJECT_STREAM.search(data, *span)):
            continue
        encoding = _span_filter(data, *span)
        carried = encoding is None
        if encoding is None:
            continue  # stored as it is (so far): the plain scan saw it
        if encoding not in _PDF_FLATE:
            raise refuse("PDF with an object stream in an encoding that cannot be checked")
        budget = _scan_inflated(data, match.end(), budget)


def _span_filter(data: mmap.mmap, start: int, end: int) -> bytes | None:
    """The filter that every ``/Filter`` between ``start`` and ``end`` names
    (escapes undone); None when there is no ``/Filter`` there, and b"" when
    they do not name one filter between them: a list of several, a filter
    given some other way (``6 0 R``, a comment before its value), different
    filters. No telling then what to undo."""
    named = len(_PDF_FILTER_NAME.findall(data, start, end))
    if not named:
        return None
    values = [_PDF_NAME.findall(found.group(1)) for found in _PDF_FILTER.finditer(data, start, end)]
    if len(values) != named or any(len(value) != 1 for value in values):
        return b""
    names = {_pdf_names(value[0]) for value in values}
    return names.pop() if len(names) == 1 else b""


def _scan_inflated(data: mmap.mmap, offset: int, budget: int) -> int:
    """Inflate the stream at ``offset``, refusing active content in it;
    what is left of ``budget``."""
    inflater = zlib.decompressobj()
    carry = b""
    # Output is taken a chunk at a time: input may be left over (the
    # unconsumed tail) after the file's last bytes were read.
    while not inflater.eof and (inflater.unconsumed_tail or offset < len(data)):
        pending = inflater.unconsumed_tail or data[offset : offset + _INFLATE_INPUT]
        if not inflater.unconsumed_tail:
            offset += len(pending)
        try:
            out = inflater.decompress(pending, _CHUNK)
        except zlib.error as exc:
            raise refuse("the PDF has a damaged object stream", FileErrorCode.CORRUPT_FILE) from exc
        budget -= len(out)
        if budget < 0:
            raise refuse(f"PDF object streams inflate past {MAX_PDF_INFLATED // 1024 // 1024} MiB")
        _refuse_active(carry + out)
        carry = out[-64:]
    return budget


def _refuse_active(window: bytes) -> None:
    found = _PDF_ACTIVE.search(window)
    if found:
        name = _pdf_names(found.group(1)).decode("latin-1")
        raise refuse(f"PDF with active content ({name}) is refused")


def _pdf_names(raw: bytes) -> bytes:
    """``#xx`` escapes in names undone (``/Java#53cript`` is ``/JavaScript``)."""
    return _PDF_NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


# Video ----------------------------------------------------------------------------


def _iso_boxes_end(handle: BinaryIO) -> int:
    """Where the last top-level ISO-BMFF box (MP4, AVIF) ends, or -1."""
    handle.seek(0, 2)
    size = handle.tell()
    offset = 0
    handle.seek(0)
    first = True
    while offset < size:
        handle.seek(offset)
        header = handle.read(8)
        if len(header) < 8:
            return -1
        box_size, box_type = struct.unpack(">I4s", header)
        if first and box_type != b"ftyp":
            return -1
        first = False
        if box_size == 1:
            large = handle.read(8)
            if len(large) < 8:
                return -1
            box_size = struct.unpack(">Q", large)[0]
        elif box_size == 0:
            return size
        if box_size < 8:
            return -1
        offset += box_size
    return offset


def _inspect_mp4(path: Path) -> None:
    with path.open("rb") as handle:
        end = _iso_boxes_end(handle)
    if end != path.stat().st_size:
        raise refuse(
            "the MP4 file's boxes do not add up to its length (truncated or appended data)",
            FileErrorCode.CORRUPT_FILE,
        )


def _ebml_varint(handle: BinaryIO, keep_marker: bool) -> tuple[int, int] | None:
    first = handle.read(1)
    if not first:
        return None
    byte = first[0]
    length = 1
    mask = 0x80
    while length <= 8 and not byte & mask:
        mask >>= 1
        length += 1
    if length > 8:
        return None
    rest = handle.read(length - 1)
    if len(rest) < length - 1:
        return None
    value = byte if keep_marker else byte & (mask - 1)
    for extra in rest:
        value = (value << 8) | extra
    return value, length


def _inspect_webm(path: Path) -> None:
    size = path.stat().st_size
    with path.open("rb") as handle:
        offset = 0
        while offset < size:
            handle.seek(offset)
            element = _ebml_varint(handle, keep_marker=True)
            length = _ebml_varint(handle, keep_marker=False)
            if element is None or length is None:
                raise refuse("the WebM file is truncated", FileErrorCode.CORRUPT_FILE)
            data_size, size_len = length
            unknown = data_size == (1 << (7 * size_len)) - 1
            header = element[1] + size_len
            if unknown:  # a live stream's segment: runs to the end of the file
                return
            offset += header + data_size
    if offset != size:
        raise refuse(
            "the WebM file's elements do not add up to its length", FileErrorCode.CORRUPT_FILE
        )
