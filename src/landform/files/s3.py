"""Any S3-compatible object store as file storage (``LANDFORM_STORAGE_URL=
s3://bucket/prefix``). boto3 is imported only when this backend is chosen,
and its blocking calls run in threads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from landform.files.storage import check_key
from landform.settings import Settings

CHUNK = 256 * 1024


class S3Storage:
    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        parts = urlsplit(settings.storage_url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("LANDFORM_STORAGE_URL must look like s3://bucket/prefix")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.redirect = settings.s3_asset_delivery == "redirect"
        self.url_ttl = settings.s3_signed_url_ttl
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            region_name=settings.s3_region or None,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,
                s3={"addressing_style": "path"} if settings.s3_endpoint_url else None,
            ),
        )

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def local_path(self, key: str) -> Path | None:
        return None

    def signed_url(self, key: str) -> str | None:
        """Where to redirect a visitor for this asset, when delivery is by redirect."""
        if not self.redirect:
            return None
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._object(key)},
            ExpiresIn=self.url_ttl,
        )
        return url

    async def put(self, key: str, source: Path, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.upload_file,
            str(source),
            self.bucket,
            self._object(key),
            ExtraArgs={
                "ContentType": content_type,
                "CacheControl": "public, max-age=31536000, immutable",
            },
        )

    async def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = await asyncio.to_thread(
                self.client.head_object, Bucket=self.bucket, Key=self._object(key)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def check(self) -> None:
        # The bucket itself: asking for a key cannot tell a missing bucket
        # from a missing key (a HEAD's 404 has no body to say which).
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            return
        byte_range = f"bytes={start}-{'' if end is None else end - 1}"
        response = await asyncio.to_thread(
            self.client.get_object, Bucket=self.bucket, Key=self._object(key), Range=byte_range
        )
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(
            self.client.delete_object, Bucket=self.bucket, Key=self._object(key)
        )
