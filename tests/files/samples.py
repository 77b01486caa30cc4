"""Files for the upload tests, made here from scratch: valid ones of every
allowed kind, and a corpus of hostile ones."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def image(fmt: str, size: tuple[int, int] = (64, 48), **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(buffer, fmt, **save)
    return buffer.getvalue()


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    return image("PNG", size)


def jpeg_with_gps() -> bytes:
    return photo_with_gps("JPEG")


def photo_with_gps(fmt: str, orientation: int = 1) -> bytes:
    """A phone's photo: where it was taken, with what, and (JPEG) a comment,
    (WebP) XMP, (PNG) a text chunk; ``orientation`` as EXIF tag 0x0112."""
    picture = Image.new("RGB", (80, 60), (10, 120, 200))
    picture.paste((250, 250, 0), (0, 0, 20, 10))  # a corner, to see it turn
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    exif[0x0110] = "Model 9"
    exif[0x0112] = orientation
    gps = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    exif[0x8825] = gps
    extra: dict[str, object] = {
        "JPEG": {"comment": b"secret comment"},
        "WEBP": {"xmp": b"<x:xmpmeta>secret comment</x:xmpmeta>"},
        "PNG": {"pnginfo": _png_text("Comment", "secret comment")},
    }.get(fmt, {})
    buffer = io.BytesIO()
    picture.save(buffer, fmt, exif=exif.tobytes(), **extra)
    return buffer.getvalue()


def _png_text(key: str, value: str) -> object:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


def animated(fmt: str) -> bytes:
    """Three frames (an AVIF of them is an image sequence, brand ``avis``)."""
    frames = [Image.new("RGB", (32, 32), (i * 80, 40, 200)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("P", (32, 32), i * 40) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def gif_frames(count: int, screen: tuple[int, int] = (1, 1), extra: bytes = b"") -> bytes:
    """A GIF of ``count`` 1×1 frames of about a dozen bytes each (image
    descriptor, the LZW codes clear, pixel 0, end), as a frame bomb is made;
    ``extra`` (more blocks) goes before the trailer."""
    header = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00" * 3 + b"\xff" * 3
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame * count + extra + b";"


def gif_frame(size: tuple[int, int]) -> bytes:
    """One real frame (image descriptor and image data) of the given size,
    to put into another GIF."""
    buffer = io.BytesIO()
    Image.new("P", size, 1).save(buffer, "GIF")
    data = buffer.getvalue()
    offset = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while data[offset] == 0x21:  # extensions, each a chain of sub-blocks
        offset += 2
        while data[offset]:
            offset += 1 + data[offset]
        offset += 1
    assert data[offset] == 0x2C and data.endswith(b";")
    return data[offset:-1]


def animated_webp(count: int) -> bytes:
    frames = [Image.new("RGB", (2, 2), (i % 256, 0, 0)) for i in range(count)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    return buffer.getvalue()


def svg(body: str = '<circle cx="5" cy="5" r="4" fill="#4f46e5"/>', attrs: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="10" height="10" viewBox="0 0 10 10"{attrs}>{body}</svg>'
    ).encode()


def pdf(extra: bytes = b"") -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + extra + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def pdf_with_object_stream(
    objects: bytes, filters: bytes = b"/FlateDecode", between: bytes = b""
) -> bytes:
    """A PDF whose catalog's objects sit in a compressed object stream
    (``/Type /ObjStm``), as PDF 1.5 writers store them; ``between`` goes
    into its dictionary between the type and the filter."""
    packed = zlib.compress(objects) if b"Flate" in filters else objects
    stream = (
        b"4 0 obj\n<< /Type /ObjStm /N 1 /First 4 "
        + between
        + b" /Filter "
        + filters
        + f" /Length {len(packed)} >>\nstream\n".encode()
        + packed
        + b"\nendstream\nendobj\n"
    )
    plain = pdf()
    return plain.replace(b"xref\n", stream + b"xref\n", 1)


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4(media: bytes = b"\x00" * 1024) -> bytes:
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    moov = box(b"moov", box(b"mvhd", b"\x00" * 100))
    return ftyp + moov + box(b"mdat", media)


def ebml(element_id: bytes, payload: bytes) -> bytes:
    return element_id + _ebml_size(len(payload)) + payload


def _ebml_size(n: int) -> bytes:
    if n < 127:
        return bytes([0x80 | n])  # one byte, as real files write small sizes
    return (n | (1 << 56)).to_bytes(8, "big")


def webm() -> bytes:
    header = ebml(
        b"\x1a\x45\xdf\xa3",
        ebml(b"\x42\x86", b"\x01") + ebml(b"\x42\x82", b"webm") + ebml(b"\x42\x87", b"\x02"),
    )
    segment = ebml(b"\x18\x53\x80\x67", ebml(b"\x15\x49\xa9\x66", b"\x00" * 32))
    return header + segment


def png_with_dimensions(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims enormous dimensions (a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gif_with_dimensions(width: int, height: int) -> bytes:
    real = image("GIF", (4, 4))
    return real[:6] + struct.pack("<HH", width, height) + real[10:]


# name, bytes, claimed Content-Type, what must happen
SCRIPT_OBJECT = b"5 0 << /S /JavaScript /JS (app.alert(1)) >>"

HOSTILE: list[tuple[str, bytes, str]] = [
    ("svg-script", svg("<script>alert(1)</script>"), "image/svg+xml"),
    ("svg-onload", svg(attrs=' onload="alert(1)"'), "image/svg+xml"),
    ("svg-event-on-child", svg('<rect width="5" height="5" onclick="alert(1)"/>'), "image/svg+xml"),
    ("svg-external-href", svg('<image xlink:href="https://evil.example/x.png"/>'), "image/svg+xml"),
    (
        "svg-javascript-href",
        svg('<a href="javascript:alert(1)"><text>x</text></a>'),
        "image/svg+xml",
    ),
    ("svg-foreign-object", svg("<foreignObject><div>html</div></foreignObject>"), "image/svg+xml"),
    (
        "svg-billion-laughs",
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><svg xmlns="http://www.w3.org/2000/svg">'
        b"<text>&b;</text></svg>",
        "image/svg+xml",
    ),
    (
        "svg-xxe",
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
        "image/svg+xml",
    ),
    ("svg-style-url", svg('<rect style="fill:url(https://evil.example/t)"/>'), "image/svg+xml"),
    (
        "svg-style-import",
        svg("<style>@import url(https://evil.example/x.css);</style>"),
        "image/svg+xml",
    ),
    (
        "svg-animate-href",
        svg('<a><set attributeName="href" to="javascript:alert(1)"/></a>'),
        "image/svg+xml",
    ),
    (
        "svg-data-html",
        svg('<a href="data:text/html,&lt;script&gt;"><text>x</text></a>'),
        "image/svg+xml",
    ),
    # url() in presentation attributes, as in style.
    ("svg-fill-url", svg('<rect fill="url(https://evil.example/x#a)"/>'), "image/svg+xml"),
    (
        "svg-filter-mask-url",
        svg('<rect filter="url(https://evil.example/f.svg#f)" mask="url(//evil.example/m#m)"/>'),
        "image/svg+xml",
    ),
    # CSS escapes that spell what the checks look for.
    (
        "svg-css-escaped-import",
        svg('<style>@im\\port "https://evil.example/a.css";</style>'),
        "image/svg+xml",
    ),
    (
        "svg-css-escaped-url",
        svg('<rect style="fill:u\\72l(https://evil.example/t)"/>'),
        "image/svg+xml",
    ),
    (
        "svg-xml-stylesheet",
        b'<?xml version="1.0"?><?xml-stylesheet href="https://evil.example/x.xsl" '
        b'type="text/xsl"?>' + svg().split(b"?>", 1)[1],
        "image/svg+xml",
    ),
    (
        "pdf-javascript-in-object-stream",
        pdf_with_object_stream(b"5 0 << /S /JavaScript /JS (app.alert(1)) >>"),
        "application/pdf",
    ),
    (
        "pdf-escaped-javascript-in-object-stream",
        pdf_with_object_stream(b"5 0 << /S /Java#53cript /JS (app.alert(1)) >>"),
        "application/pdf",
    ),
    (
        # Inflates past the 1 MiB taken at a time before the script: the
        # whole of a stream is read, not its first output chunk.
        "pdf-javascript-deep-in-object-stream",
        pdf_with_object_stream(b" " * 2_000_000 + b"5 0 << /S /JavaScript /JS (app.alert(1)) >>"),
        "application/pdf",
    ),
    (
        "pdf-object-stream-indirect-filter",
        pdf_with_object_stream(b"5 0 << /S /URI >>", filters=b"6 0 R"),
        "application/pdf",
    ),
    (
        # A million stream keywords, names full of escapes before each: the
        # checks read it in linear time (they took minutes) and refuse it.
        "pdf-stream-flood",
        b"%PDF-1.5\n" + (b"/ObjStm" + b"#41" * 25 + b" stream\n") * 100_001 + b"%%EOF\n",
        "application/pdf",
    ),
    # Where the object stream's dictionary ends is the reader's guess; these
    # would have a reader that guesses wrong miss the stream.
    (
        "pdf-object-stream-long-dictionary",
        pdf_with_object_stream(SCRIPT_OBJECT, between=b"/Pad (" + b"x" * 10_000 + b")"),
        "application/pdf",
    ),
    (
        "pdf-object-stream-obj-in-a-string",
        pdf_with_object_stream(SCRIPT_OBJECT, between=b"/Note (1 0 obj)"),
        "application/pdf",
    ),
    (
        "pdf-object-stream-stream-in-strings",
        pdf_with_object_stream(SCRIPT_OBJECT, between=b"/A (stream\n) /B (stream\r\n)"),
        "application/pdf",
    ),
    (
        "pdf-object-stream-filter-named-twice",
        pdf_with_object_stream(SCRIPT_OBJECT, between=b"/Old /Filter /ASCIIHexDecode"),
        "application/pdf",
    ),
    (
        "pdf-object-stream-unchecked-encoding",
        pdf_with_object_stream(b"5 0 << /S /URI >>", filters=b"[/ASCIIHexDecode /FlateDecode]"),
        "application/pdf",
    ),
    ("png-bomb", png_with_dimensions(100_000, 100_000), "image/png"),
    ("gif-bomb", gif_with_dimensions(65_535, 65_535), "image/gif"),
    ("png-truncated", png((256, 256))[:-200], "image/png"),
    ("jpeg-truncated", image("JPEG", (256, 256))[:-300], "image/jpeg"),
    ("png-html-appended", png() + b"<html><script>alert(1)</script></html>", "image/png"),
    ("jpeg-zip-appended", image("JPEG") + b"PK\x03\x04" + b"\x00" * 100, "image/jpeg"),
    # A zip after the trailer, ending in the trailer's byte as a GIF does.
    ("gif-zip-appended", animated_gif() + b"PK\x03\x04" + b"\x00" * 100 + b";", "image/gif"),
    # Bytes between blocks: Pillow skips them, a browser stops there.
    # 19: the header with its colour table; then a stray byte, then a frame.
    ("gif-bytes-between-blocks", gif_frames(1, extra=b"\x07" + gif_frames(1)[19:-1]), "image/gif"),
    # A million empty comments: no frame, but seconds of Pillow's time.
    ("gif-extension-flood", gif_frames(1, extra=b"\x21\xfe\x00" * 1_000_000), "image/gif"),
    ("gif-javascript", b"GIF89a=1;alert(document.domain)//" + b"\x00" * 64, "image/gif"),
    ("html-as-png", b"<!doctype html><html><script>alert(1)</script></html>", "image/png"),
    ("php-as-jpeg", b"<?php system($_GET['c']); ?>", "image/jpeg"),
    ("windows-exe", b"MZ\x90\x00" + b"\x00" * 200, "application/octet-stream"),
    ("zip-archive", b"PK\x03\x04" + b"\x00" * 200, "application/zip"),
    (
        "pdf-javascript",
        pdf(b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >> "),
        "application/pdf",
    ),
    ("pdf-launch", pdf(b"/OpenAction << /S /Launch /F (cmd.exe) >> "), "application/pdf"),
    ("pdf-escaped-name", pdf(b"/OpenAction << /S /J#61vaScript /JS (x) >> "), "application/pdf"),
    ("pdf-truncated", pdf()[:-30], "application/pdf"),
    ("png-claims-jpeg", png(), "image/jpeg"),
    ("mp4-truncated", mp4()[:-100], "video/mp4"),
    ("webm-trailing-garbage", webm() + b"\x00garbage" * 10, "video/webm"),
]
