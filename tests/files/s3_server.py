"""A local S3-compatible server (moto's standalone server, real S3 protocol
over HTTP) for the S3 storage tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.live_server import free_port

CREDENTIALS = {
    "s3_access_key_id": "test-key",
    "s3_secret_access_key": "test-secret",
    "s3_region": "us-east-1",
}


@contextmanager
def moto_s3() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def new_bucket(endpoint: str) -> str:
    name = f"landform-{uuid.uuid4().hex[:12]}"
    client: Any = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["s3_access_key_id"],
        aws_secret_access_key=CREDENTIALS["s3_secret_access_key"],
        region_name=CREDENTIALS["s3_region"],
    )
    client.create_bucket(Bucket=name)
    return name
