from __future__ import annotations

from enum import StrEnum

from landform.core.errors import Conflict, DomainError, NotFound, ServiceUnavailable


class FileErrorCode(StrEnum):
    FILE_NOT_FOUND = "file_not_found"
    FILE_TOO_LARGE = "file_too_large"
    QUOTA_EXCEEDED = "storage_quota_exceeded"
    UNSUPPORTED_TYPE = "unsupported_file_type"
    TYPE_MISMATCH = "file_type_mismatch"
    UNSAFE_FILE = "unsafe_file"
    IMAGE_TOO_LARGE = "image_dimensions_too_large"
    IMAGE_TOO_MANY_FRAMES = "image_too_many_frames"
    CORRUPT_FILE = "corrupt_file"
    NO_FILE = "no_file"
    FILE_IN_USE = "file_in_use"
    STORAGE_UNAVAILABLE = "storage_unavailable"


class FileNotFound(NotFound):
    code = FileErrorCode.FILE_NOT_FOUND


class FileTooLarge(DomainError):
    status = 413
    code = FileErrorCode.FILE_TOO_LARGE

    @classmethod
    def over(cls, max_bytes: int) -> FileTooLarge:
        return cls(
            f"the file is larger than the {max_bytes:,}-byte limit", details={"limit": max_bytes}
        )


class QuotaExceeded(DomainError):
    status = 413
    code = FileErrorCode.QUOTA_EXCEEDED


class UnsupportedFile(DomainError):
    """The bytes are not an allowed type, or not the type they claim, or not safe."""

    status = 415
    code = FileErrorCode.UNSUPPORTED_TYPE


def refuse(
    message: str, code: FileErrorCode = FileErrorCode.UNSAFE_FILE, details: object = None
) -> UnsupportedFile:
    """A file's check failing: unsafe unless ``code`` says otherwise."""
    return UnsupportedFile(message, code=code, details=details)


class BadUpload(DomainError):
    status = 400
    code = FileErrorCode.NO_FILE


class FileInUse(Conflict):
    code = FileErrorCode.FILE_IN_USE


class StorageUnavailable(ServiceUnavailable):
    """File storage cannot be reached (a store that is down, a local folder
    that is gone): nothing of the request was kept."""

    code = FileErrorCode.STORAGE_UNAVAILABLE

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "5"})
