"""A body the client stops sending halfway (an upload, a beacon, a JSON
write), on a real server over both interfaces: a 400 in the one error
shape, no server error in the log, nothing kept."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.files import samples
from tests.live_server import live_server, verified_login

pytestmark = pytest.mark.server


UPLOAD = (
    "/files/upload",
    "multipart/form-data; boundary=cut",
    b'--cut\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
    b"Content-Type: image/png\r\n\r\n" + samples.png(),
)
BEACON = ("/analytics/track-view", "text/plain", b'{"slug": "cut", "path": "/')
WRITE = ("/landing-pages", "application/json", b'{"title": "Cut')


def cut_short(base: str, token: str, path: str, content_type: str, part: bytes) -> bytes:
    """Declare more body than is sent, stop sending, read the answer."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: landform\r\n".encode()
            + f"Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n".encode()
            + f"Content-Length: {len(part) + 100}\r\n\r\n".encode()
            + part
        )
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("interface", ["asgi", "rsgi"])
def test_a_body_cut_short_is_a_400_not_a_server_error(tmp_path: Path, interface: str) -> None:
    with live_server(tmp_path, workers=1, interface=interface) as base:
        token = verified_login(base, tmp_path, "cut@example.com")
        for request in (UPLOAD, BEACON, WRITE):
            answer = cut_short(base, token, *request)
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line.split()[1] == b"400", (request[0], answer[:500])
            assert b'"code":"incomplete_body"' in rest, (request[0], answer[:500])
        mine = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/files", headers=mine).json()["items"] == []
        assert httpx.get(f"{base}/landing-pages", headers=mine).json()["items"] == []
        log = next(tmp_path.glob("server-*.log")).read_text()
        assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]


@pytest.mark.parametrize("interface", ["asgi", "rsgi"])
def test_an_upload_refused_before_it_is_read_still_gets_its_answer(
    tmp_path: Path, interface: str
) -> None:
    """Refused for its credentials, an upload's body is read and dropped
    before the answer goes: closed with bytes unread, a connection is reset,
    and clients still sending saw a reset instead of the 401 (granian: most
    of 60 concurrent 2 MB uploads)."""
    body = samples.png() + bytes(2_000_000)

    async def refused_many(base: str, headers: dict[str, str]) -> list[int | str]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:

            async def one() -> int | str:
                try:
                    answer = await client.post(
                        "/files/upload", files={"file": ("a.png", body)}, headers=headers
                    )
                except httpx.TransportError as exc:
                    return type(exc).__name__
                assert answer.json()["error"]["code"] in (
                    "not_authenticated",
                    "invalid_access_token",
                )
                return answer.status_code

            return list(await asyncio.gather(*(one() for _ in range(40))))

    with live_server(tmp_path, workers=2, interface=interface) as base:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            assert asyncio.run(refused_many(base, headers)) == [401] * 40, headers
