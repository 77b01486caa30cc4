"""Streams a multipart/form-data body into an ``Upload`` as it arrives, so a
file is never held in memory whole and a limit cuts it off mid-stream."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from urllib.parse import unquote_to_bytes

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import DEFAULT_MAX_HEADER_SIZE, parse_options_header

from landform.files.errors import BadUpload
from landform.files.service import Upload

FILE_FIELD = "file"
# python-multipart's limit on one header line, a file name included.
MAX_PART_HEADER_BYTES = DEFAULT_MAX_HEADER_SIZE


async def receive_into(upload: Upload, content_type: str, body: AsyncIterator[bytes]) -> None:
    media, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise BadUpload(
            "send the file as multipart/form-data in a field named 'file'",
            code="expected_multipart",
        )
    headers: dict[bytes, bytes] = {}
    field = b""
    value = b""
    in_file = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        nonlocal field
        field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        nonlocal value
        value += data[start:end]

    def on_header_end() -> None:
        nonlocal field, value
        headers[field.lower()] = value
        field = value = b""

    def on_headers_finished() -> None:
        nonlocal in_file
        header = headers.get(b"content-disposition", b"")
        disposition, params = parse_options_header(header)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        # The field named 'file' is the file, also when it gives no file
        # name (curl -F 'file=<photo.png' sends none).
        in_file = disposition == b"form-data" and name == FILE_FIELD
        if in_file:
            upload.start_file(
                file_name(params.get(b"filename"), header),
                headers.get(b"content-type", b"").decode("latin-1"),
            )

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if in_file:
            upload.write(data[start:end])

    def on_part_begin() -> None:
        headers.clear()

    ended = False

    def on_end() -> None:  # the closing boundary, --boundary--
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_end": on_end,
        },
    )
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        if "header size" in str(exc):
            raise BadUpload(
                f"a part's headers are longer than {MAX_PART_HEADER_BYTES} bytes: "
                "give the file a shorter name",
                code="malformed_multipart",
            ) from exc
        raise BadUpload("the multipart body is malformed", code="malformed_multipart") from exc
    if not ended:
        # python-multipart does not check it (its finalize() is a no-op): a
        # body cut short, mid-file or before the last line, is no upload.
        raise BadUpload(
            "the multipart body ends before its closing boundary (--boundary--): "
            "it was cut short; send it again",
            code="malformed_multipart",
        )


# Browsers escape these three in a part's file name, and only these (the
# HTML standard's multipart/form-data encoding): '"' as %22, CR and LF.
_BROWSER_ESCAPES = re.compile(rb"%(22|0D|0A)")
# RFC 5987's form (filename*=UTF-8''%E2%82%AC.png), which some clients send
# instead: python-multipart drops it.
_EXTENDED = re.compile(rb"""filename\*\s*=\s*"?([A-Za-z0-9_-]+)'[^']*'([^;\s]+)""")


def file_name(filename: bytes | None, disposition: bytes) -> str:
    """The part's file name as the user named the file ("" if none): the
    RFC 5987 form first where it reads (RFC 6266 4.3: it is the one meant,
    ``filename`` the fallback for older readers)."""
    extended = _EXTENDED.search(disposition)
    if extended is not None:
        charset, encoded = extended[1].decode("ascii"), unquote_to_bytes(extended[2].strip(b'"'))
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            return encoded.decode(charset)
    if filename is not None:
        return _BROWSER_ESCAPES.sub(lambda m: bytes([int(m[1], 16)]), filename).decode(
            "utf-8", "replace"
        )
    return ""
