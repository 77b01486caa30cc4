"""Stopping background loops: a cancellation that gets lost on its way (as
one that lands while an asyncio.timeout around a Redis call expires, which
then reads as a timeout) is repeated, and a loop that will not stop is left
behind with a warning instead of hanging the shutdown."""

from __future__ import annotations

import asyncio

import pytest

from landform.core import tasks
from landform.core.tasks import cancel_and_wait


async def test_a_lost_cancellation_is_repeated() -> None:
    lost = 0

    async def retrying_loop() -> None:
        nonlocal lost
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if lost == 0:  # taken for a timeout: the loop retries
                    lost += 1
                    continue
                raise

    task = asyncio.create_task(retrying_loop())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, None), 5)
    assert task.cancelled() and lost == 1


async def test_a_task_that_never_stops_does_not_hang_the_shutdown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tasks, "GIVE_UP_AFTER", 0.3)
    stop = asyncio.Event()

    async def deaf() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(deaf(), name="deaf-loop")
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), 5)
    assert not task.done()
    assert "tasks would not stop: deaf-loop" in caplog.text
    stop.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)


async def test_a_task_that_failed_before_is_stopped_quietly() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    await cancel_and_wait(task)  # no exception, no "never retrieved" warning
    assert isinstance(task.exception(), RuntimeError)
