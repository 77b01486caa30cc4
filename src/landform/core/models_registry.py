"""Imports every domain's models so ``Base.metadata`` knows all tables
(for Alembic and for tests)."""

from landform.analytics import models as _analytics_models  # noqa: F401
from landform.auth import models as _auth_models  # noqa: F401
from landform.core import change_log as _change_log  # noqa: F401
from landform.core import idempotency as _idempotency  # noqa: F401
from landform.core import mail_models as _mail_models  # noqa: F401
from landform.core import owner_stamps as _owner_stamps  # noqa: F401
from landform.core.db import Base
from landform.files import models as _file_models  # noqa: F401
from landform.pages import models as _page_models  # noqa: F401

metadata = Base.metadata
