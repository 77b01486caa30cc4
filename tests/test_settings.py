"""Every list setting reads from the environment as the README writes it:
comma-separated (a JSON list would be the only form otherwise, and a value
in the documented form would stop the server at start)."""

from __future__ import annotations

import os
import typing
from unittest import mock

from landform.settings import Settings


def list_settings() -> list[str]:
    hints = typing.get_type_hints(Settings, include_extras=True)
    return [name for name in Settings.model_fields if _is_list(hints[name])]


def _is_list(hint: object) -> bool:
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return typing.get_origin(hint) is list


def test_every_list_setting_takes_commas_from_the_environment() -> None:
    names = list_settings()
    assert {"ops_open_networks", "trusted_proxies", "cors_origins"} <= set(names)
    for name in names:
        variable = f"LANDFORM_{name.upper()}"
        with mock.patch.dict(os.environ, {variable: " 10.0.0.0/8, 192.168.0.0/16 ,"}):
            value = getattr(Settings(), name)
        assert value == ["10.0.0.0/8", "192.168.0.0/16"], (variable, value)
