"""Forgot-password and resend-verification answer 202 either way, and in
the same time either way: only an address with an account costs a token and
a mail, and over SMTP that took 50-80 ms against 5-10 ms, telling anyone
which addresses have accounts with one request each."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from landform.auth.answer_time import LONGEST_PAD_SECONDS, AnswerTime
from landform.core.clock import Clock, FrozenClock
from landform.settings import Settings
from tests.conftest import register

MAIL_SECONDS = 0.25  # a slow mail server


@pytest.fixture
def clock() -> Clock:
    return FrozenClock()


@pytest.fixture
def slow_mail(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    mailer = app.components.mailer
    send = mailer.send

    async def slowly(message: Any) -> None:
        await asyncio.sleep(MAIL_SECONDS)
        await send(message)

    monkeypatch.setattr(mailer, "send", slowly)


async def timed(client: httpx.AsyncClient, path: str, email: str) -> float:
    started = time.perf_counter()
    answer = await client.post(path, json={"email": email})
    assert answer.status_code == 202, answer.text
    return time.perf_counter() - started


@pytest.mark.parametrize("path", ["/auth/forgot-password", "/auth/resend-verification"])
async def test_an_unknown_address_is_answered_as_slowly_as_a_known_one(
    client: httpx.AsyncClient, slow_mail: None, path: str, clock: FrozenClock, settings: Settings
) -> None:
    for n in range(3):
        await register(client, f"known{n}@example.com")  # mailed: the quiet period starts
    clock.advance(settings.verification_resend_seconds + 1)
    known = [await timed(client, path, f"known{n}@example.com") for n in range(3)]
    unknown = [await timed(client, path, f"nobody{n}@example.com") for n in range(3)]
    # Mailed moments ago (the quiet period): no mail, the same time.
    again = [await timed(client, path, f"known{n}@example.com") for n in range(3)]
    assert min(known) >= MAIL_SECONDS
    assert min(unknown) >= MAIL_SECONDS * 0.95, unknown
    assert min(again) >= MAIL_SECONDS * 0.95, again


async def test_the_fast_case_waits_for_a_recorded_slow_time_bounded() -> None:
    times = AnswerTime()
    started = times.start()
    await times.pad(started)  # nothing recorded yet: no wait
    assert time.perf_counter() - started < 0.05
    slow = times.start() - 0.1  # a slow case that took 0.1 s
    times.record(slow)
    started = times.start()
    await times.pad(started)
    assert 0.09 <= time.perf_counter() - started < 0.5
    times = AnswerTime()
    times.record(times.start() - 60)  # a mail server's timeout
    started = times.start()
    await times.pad(started)
    assert time.perf_counter() - started <= LONGEST_PAD_SECONDS + 0.2
