"""A 300 MB upload to a real server barely moves its memory: the body goes
to a spool file as it arrives, never into memory whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.files import samples
from tests.live_server import live_server, verified_login

pytestmark = pytest.mark.server

MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.parametrize("interface", ["asgi", "rsgi"])
def test_a_300_mb_upload_does_not_grow_the_worker(tmp_path: Path, interface: str) -> None:
    # Over RSGI the body reaches the ASGI app through core/rsgi.py's bridge,
    # which must stream it too.
    with live_server(
        tmp_path,
        workers=1,
        interface=interface,
        LANDFORM_MAX_UPLOAD_BYTES=str(400 * MB),
        LANDFORM_STORAGE_QUOTA_BYTES=str(1024 * MB),
    ) as base:
        token = verified_login(base, tmp_path, "big@example.com")
        worker = httpx.get(f"{base}/healthz").json()["worker"]
        boundary = "lf-memory-test"
        header = samples.mp4(b"")  # ftyp + moov + an empty mdat, patched below
        media_size = 300 * MB
        ftyp_moov = header[:-8]
        mdat = (8 + media_size).to_bytes(4, "big") + b"mdat"

        def body() -> Iterator[bytes]:
            yield (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="long.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
                ).encode()
                + ftyp_moov
                + mdat
            )
            chunk = b"\x00" * MB
            for _ in range(media_size // MB):
                yield chunk
            yield f"\r\n--{boundary}--\r\n".encode()

        before = rss_mb(worker)
        response = httpx.post(
            f"{base}/files/upload",
            content=body(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
            timeout=120,
        )
        after = rss_mb(worker)
        assert response.status_code == 201, response.text
        assert response.json()["size"] == len(ftyp_moov) + len(mdat) + media_size
        assert after - before < 16, f"worker RSS grew {after - before:.1f} MB"
