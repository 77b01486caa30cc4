"""Why a backup or a restore refuses to go on."""

from __future__ import annotations

from landform.core.errors import DomainError


class BackupRefused(DomainError):
    """The operator must change something (a path, ``--force``, a version)."""

    status = 409
    code = "backup_refused"


class BackupInvalid(DomainError):
    """The backup itself is incomplete, damaged or not one of ours."""

    status = 422
    code = "backup_invalid"


class BackupToolMissing(DomainError):
    """A program the backup needs (pg_dump, pg_restore) is not installed."""

    status = 500
    code = "backup_tool_missing"


class BackupFailed(DomainError):
    """A step failed on the way (a dump, a copy, a restore tool)."""

    status = 500
    code = "backup_failed"
