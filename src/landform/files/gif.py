"""A GIF's layout, read from its block structure without decoding a pixel.

Pillow counts a GIF's frames by seeking through them one by one, at tens of
microseconds each in Python, and the upload checks then decode every frame:
a file of a few megabytes made of hundreds of thousands of 1×1 frames (a
dozen bytes each) costs a worker tens of seconds of CPU. Walking the blocks
(header, logical screen descriptor, colour tables, extensions and image
descriptors, each followed by its chain of length-prefixed sub-blocks, and
the trailer) costs a few bytes' reading per block, and stops as soon as the
frame limit is passed, so the file is judged before Pillow opens it."""

from __future__ import annotations

from dataclasses import dataclass

_SIGNATURES = (b"GIF87a", b"GIF89a")
_EXTENSION = 0x21
_IMAGE = 0x2C
_TRAILER = 0x3B
# Extension blocks before one image (or the trailer). An encoder writes a
# few (graphic control, comment, application data such as NETSCAPE looping,
# XMP, ICC); Pillow reads each in Python, so millions of empty ones in a
# few megabytes cost seconds of CPU while adding no frame.
MAX_EXTENSIONS_IN_A_ROW = 64


class MalformedGif(ValueError):
    """The bytes do not follow the GIF block structure (truncated, or with
    something between blocks that is not a block)."""


class ExtensionFlood(Exception):
    """More extension blocks in a row than any encoder writes."""


class TooManyFrames(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} frames")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class GifLayout:
    screen: tuple[int, int]  # the logical screen, as the header declares it
    # The logical screen grown to hold every frame: decoders (Pillow
    # included) enlarge the canvas for a frame that reaches past it, and
    # compose every frame on the whole canvas.
    canvas: tuple[int, int]
    frames: int
    end: int  # offset just past the trailer


def read_layout(data: bytes, max_frames: int) -> GifLayout:
    """The layout of the GIF in ``data``; ``TooManyFrames`` as soon as a
    frame past ``max_frames`` is met, ``MalformedGif`` if the blocks do not
    add up."""
    if len(data) < 13 or data[:6] not in _SIGNATURES:
        raise MalformedGif("no GIF header")
    width = int.from_bytes(data[6:8], "little")
    height = int.from_bytes(data[8:10], "little")
    offset = 13 + _colour_table_bytes(data[10])
    canvas_w, canvas_h = width, height
    frames = 0
    extensions = 0  # since the last image
    size = len(data)
    while offset < size:
        block = data[offset]
        if block == _TRAILER:
            if frames == 0:
                raise MalformedGif("no image in the GIF")
            return GifLayout((width, height), (canvas_w, canvas_h), frames, offset + 1)
        if block == _EXTENSION:
            extensions += 1
            if extensions > MAX_EXTENSIONS_IN_A_ROW:
                raise ExtensionFlood(
                    f"more than {MAX_EXTENSIONS_IN_A_ROW} extension blocks in a row"
                )
            offset = _skip_sub_blocks(data, offset + 2)  # introducer, label
        elif block == _IMAGE:
            frames += 1
            extensions = 0
            if frames > max_frames:
                raise TooManyFrames(max_frames)
            descriptor = data[offset + 1 : offset + 10]
            if len(descriptor) < 9:
                raise MalformedGif("truncated image descriptor")
            left, top, frame_w, frame_h = (
                int.from_bytes(descriptor[i : i + 2], "little") for i in (0, 2, 4, 6)
            )
            canvas_w = max(canvas_w, left + frame_w)
            canvas_h = max(canvas_h, top + frame_h)
            # Descriptor, local colour table, LZW minimum code size byte.
            offset += 10 + _colour_table_bytes(descriptor[8]) + 1
            offset = _skip_sub_blocks(data, offset)
        else:
            # Pillow would skip the byte and read on; browsers stop at it.
            # What one shows and the other hides has no place in an upload.
            raise MalformedGif(f"unexpected byte 0x{block:02x} at offset {offset}")
    raise MalformedGif("the GIF has no trailer (truncated)")


def _colour_table_bytes(packed: int) -> int:
    return 3 << ((packed & 0x07) + 1) if packed & 0x80 else 0


def _skip_sub_blocks(data: bytes, offset: int) -> int:
    """The offset after the chain of sub-blocks starting at ``offset`` (each
    a length byte and that many bytes; a zero length ends the chain)."""
    size = len(data)
    while offset < size:
        length = data[offset]
        offset += 1 + length
        if length == 0:
            return offset
    raise MalformedGif("truncated data sub-blocks")
