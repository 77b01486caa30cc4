"""The files tests run on both storage backends: the local folder and S3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from landform.settings import Settings
from tests.files.s3_server import CREDENTIALS, moto_s3, new_bucket


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def settings(settings: Settings, request: pytest.FixtureRequest, s3_endpoint: str) -> Settings:
    if request.param == "local":
        return settings
    return settings.model_copy(
        update={
            "storage_url": f"s3://{new_bucket(s3_endpoint)}/assets",
            "s3_endpoint_url": s3_endpoint,
            **CREDENTIALS,
        }
    )


def stored_objects(app: Any) -> list[str]:
    """The names of the objects the app's storage holds, on either backend."""
    storage = app.components.storage
    if hasattr(storage, "bucket"):
        listed = storage.client.list_objects_v2(Bucket=storage.bucket)
        return sorted(item["Key"].rsplit("/", 1)[-1] for item in listed.get("Contents", []))
    root = app.components.settings.files_dir
    return sorted(p.name for p in root.rglob("*") if p.is_file())
