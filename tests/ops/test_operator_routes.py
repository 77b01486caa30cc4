"""Routes under /ops/ are for operators: an account an operator promoted
with ``landform users set-role``; everyone else gets a clear 401 or 403."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import httpx

from landform.settings import Settings
from tests.conftest import assert_error, signed_in


async def test_cache_counts_are_for_operators_only(client: httpx.AsyncClient, app: Any) -> None:
    assert_error(await client.get("/ops/cache"), 401, "not_authenticated")
    ada = await signed_in(client, app, "ada@example.com")
    refused = assert_error(await client.get("/ops/cache", headers=ada), 403, "operator_only")
    assert "landform users set-role" in refused["message"]

    await app.components.auth.set_role("ADA@example.com", "admin")
    answer = await client.get("/ops/cache", headers=ada)
    assert answer.status_code == 200
    body = answer.json()
    assert body["worker"] == os.getpid()
    assert {"pages", "assets"} <= set(body["tiers"]["l1"])
    assert set(body["tiers"]["l1"]["pages"]) == {
        "hits", "misses", "sets", "evictions", "hit_ratio", "bytes",
    }  # fmt: skip

    await app.components.auth.set_role("ada@example.com", "member")
    assert_error(await client.get("/ops/cache", headers=ada), 403, "operator_only")


async def landform(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the ``landform`` command; its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "landform.cli.main", *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_the_command_line_grants_and_refuses_clearly(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    ada = await signed_in(client, app, "ada@example.com")
    env = {"LANDFORM_DATA_DIR": str(settings.data_dir)}
    if not settings.is_sqlite:
        env["LANDFORM_DATABASE_URL"] = settings.primary_database_url
    code, output = await landform("users", "set-role", "ada@example.com", "admin", env=env)
    assert code == 0 and "ada@example.com is now admin" in output, output
    assert (await client.get("/ops/cache", headers=ada)).status_code == 200
    code, output = await landform("users", "set-role", "zed@example.com", "admin", env=env)
    assert code == 1 and "no account has the address zed@example.com" in output
    code, output = await landform("users", "set-role", "ada@example.com", "king", env=env)
    # A mistyped role is a usage error, as any other command's (exit 2).
    assert code == 2 and "Invalid value for 'role'" in output and "'king'" in output, output
