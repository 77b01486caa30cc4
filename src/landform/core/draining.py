"""Graceful shutdown of a served worker.

On SIGTERM (from Kubernetes, the process supervisor, or ``landform serve``
stopping its workers) a worker first *drains*: for ``drain_seconds`` it goes
on serving, reports not-ready on ``/readyz`` so load balancers take it out,
and answers every HTTP request with ``Connection: close`` so each keep-alive
client finishes its current exchange and reconnects elsewhere instead of
having an idle connection cut under it. Then it ends the live streams (their
clients reconnect elsewhere too) and hands over to the ASGI server's own
shutdown by raising SIGINT at itself: the server stops accepting, finishes
the requests in flight, and runs the lifespan shutdown, which flushes the
analytics buffers and closes the pools. The server kills a worker that has
not exited within ``shutdown_grace_seconds`` of the SIGTERM.

SIGINT keeps the server's own meaning (stop now, still finishing requests in
flight), so an operator at a terminal is not made to wait for the drain.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

STEP_SECONDS = 2.0

# A stop signal a worker received before it could handle one (see
# ``note_early_signal``), taken up by ``Draining.install``.
_early_signal: int | None = None


def note_early_signal(signum: int) -> None:
    """Record a SIGTERM or SIGINT that reached a worker before its app was
    built: a forked worker starts with the server process's handler, which
    would take the signal as if the server itself were told to stop."""
    global _early_signal
    if _early_signal != signal.SIGINT:  # SIGINT (stop now) wins over SIGTERM
        _early_signal = signum


class Draining:
    def __init__(self, drain_seconds: float) -> None:
        self.drain_seconds = drain_seconds
        self.active = False
        self._on_drain: list[Callable[[], None]] = []
        self._before_stop: list[Callable[[], Awaitable[None]]] = []
        self._stopping: asyncio.Task[None] | None = None

    def on_drain(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` as soon as draining begins."""
        self._on_drain.append(callback)

    def before_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await ``callback`` when the drain ends, before the server stops
        (each gets at most ``STEP_SECONDS``)."""
        self._before_stop.append(callback)

    @staticmethod
    def hold_sigterm() -> None:
        """Keep SIGTERM pending from now until ``install``. Called when the
        worker builds its app, before it starts: a SIGTERM meanwhile would
        otherwise meet the handler the worker inherited from the server
        process, or the server's own before it serves, and be lost (measured:
        a worker signalled while starting ran on until the server killed
        it). Threads started meanwhile inherit the mask, so the signal ends
        up with the main thread, where Python handles signals anyway."""
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

    def install(self) -> None:
        """Take SIGTERM over in the running loop, and take a SIGTERM that
        arrived while starting now. Called at lifespan start-up, after the
        ASGI server installed its own handlers (ours replaces its SIGTERM
        one; its SIGINT one stays and is what ``_stop`` raises)."""
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.begin)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        self._watch_server()
        if _early_signal == signal.SIGTERM:
            self.begin()
        elif _early_signal == signal.SIGINT:
            os.kill(os.getpid(), signal.SIGINT)

    def _watch_server(self) -> None:
        """Drain as on SIGTERM when the server process that started this
        worker dies without stopping it (``kill -9``, the OOM killer, a
        supervisor that kills only the process it started). Otherwise the
        workers live on as orphans: serving, with nothing to replace one
        that dies, and holding the port, so a new ``landform serve``
        refuses to start. Both granian and uvicorn start workers with
        multiprocessing, whose sentinel becomes readable when the parent
        is gone (no polling); the app running in the server's own process
        (uvicorn with one worker) has no parent to watch."""
        server = multiprocessing.parent_process()
        if server is None:
            return
        loop = asyncio.get_running_loop()

        def gone() -> None:
            loop.remove_reader(server.sentinel)
            log.warning("shutdown: the server process (%s) is gone; draining", server.pid)
            self.begin()

        loop.add_reader(server.sentinel, gone)

    def begin(self) -> None:
        if self.active:
            return
        self.active = True
        log.info("shutdown: draining for %.1f s before stopping", self.drain_seconds)
        for callback in self._on_drain:
            callback()
        self._stopping = asyncio.get_running_loop().create_task(self._stop())

    async def _stop(self) -> None:
        await asyncio.sleep(self.drain_seconds)
        for callback in self._before_stop:
            try:
                await asyncio.wait_for(callback(), STEP_SECONDS)
            except Exception:  # the server must stop whatever a step did
                log.exception("shutdown: a step before stopping failed")
        os.kill(os.getpid(), signal.SIGINT)


class CloseWhenDraining:
    """While draining, every HTTP response carries ``Connection: close``.
    Outside the drain it costs an attribute read and one await per request.
    (It must stay a coroutine function: servers tell ASGI 3 from ASGI 2 by
    that.)"""

    def __init__(self, app: ASGIApp, draining: Draining) -> None:
        self.app = app
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.draining.active or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"connection"
                ]
                headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, closing)
