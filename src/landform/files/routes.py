from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from landform.auth.deps import PrincipalDep
from landform.core.errors import paths_renamed
from landform.core.pagination import CURSOR_IN_QUERY
from landform.files.multipart import receive_into
from landform.files.schemas import FileList, FilePublic, StorageUsage
from landform.files.service import FileService

router = APIRouter(tags=["files"])


async def file_service(request: Request) -> FileService:
    service: FileService = request.app.state.files
    return service


FileServiceDep = Annotated[FileService, Depends(file_service)]


@router.post(
    "/files/upload",
    status_code=201,
    response_model=FilePublic,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
    responses={
        400: {"description": "`no_file`: no multipart field `file`"},
        403: {"description": "`email_not_verified`: verify the address before uploading"},
        413: {"description": "`file_too_large` or `storage_quota_exceeded`"},
        415: {
            "description": "`unsupported_file_type` (read from the bytes), `file_type_mismatch`, "
            "`unsafe_file`, `corrupt_file`, `image_dimensions_too_large` or "
            "`image_too_many_frames`"
        },
        503: {"description": "`storage_unavailable`: file storage cannot be reached"},
        507: {"description": "`insufficient_storage`: the server's storage is full"},
    },
)
async def upload_file(
    request: Request, principal: PrincipalDep, service: FileServiceDep
) -> FilePublic:
    """Upload one file (multipart field `file`). Its type is read from its bytes.
    Uploading the same bytes again returns the file you already have."""
    await service.check_uploader(principal.user_id)
    async with service.begin_upload() as upload:
        await receive_into(upload, request.headers.get("content-type", ""), request.stream())
        return FilePublic.of(await service.store(principal.user_id, upload))


@router.get("/files", response_model=FileList)
async def list_files(
    principal: PrincipalDep,
    service: FileServiceDep,
    category: Literal["image", "video", "document"] | None = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> FileList:
    with paths_renamed(CURSOR_IN_QUERY):
        page = await service.list_files(
            principal.user_id, category=category, cursor=cursor, limit=limit
        )
    return FileList(items=[FilePublic.of(f) for f in page.items], next_cursor=page.next_cursor)


@router.get("/files/usage", response_model=StorageUsage)
async def storage_usage(principal: PrincipalDep, service: FileServiceDep) -> StorageUsage:
    """How much of your storage quota your files take."""
    used, quota, files = await service.usage(principal.user_id)
    return StorageUsage(used_bytes=used, quota_bytes=quota, files=files)


@router.get("/files/{file_id}", response_model=FilePublic)
async def get_file(
    file_id: uuid.UUID, principal: PrincipalDep, service: FileServiceDep
) -> FilePublic:
    return FilePublic.of(await service.get(principal.user_id, file_id))


@router.delete(
    "/files/{file_id}",
    status_code=204,
    responses={
        409: {"description": "`file_in_use`: a live published page shows it (`details.pages`)"},
        503: {"description": "`storage_unavailable`: file storage cannot be reached"},
    },
)
async def delete_file(
    file_id: uuid.UUID, principal: PrincipalDep, service: FileServiceDep
) -> Response:
    await service.delete(principal.user_id, file_id)
    return Response(status_code=204)
