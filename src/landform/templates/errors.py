from __future__ import annotations

from enum import StrEnum

from landform.core.errors import NotFound


class TemplateErrorCode(StrEnum):
    TEMPLATE_NOT_FOUND = "template_not_found"


class TemplateNotFound(NotFound):
    code = TemplateErrorCode.TEMPLATE_NOT_FOUND
