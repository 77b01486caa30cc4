"""A TCP relay in front of a server (Redis), to take it away and bring it
back without touching the real one, which other tests and programs share:
``close`` refuses new connections and cuts the open ones, as a crashed or
restarting server would; ``open`` listens again on the same port. Runs in a
thread of its own, so synchronous code (benchmarks) and the event loop of
an async test can both drive it. Used by tests and by bench/cache_mix.py.

``hang`` keeps every connection open and new ones accepted but carries
nothing either way, as a frozen host or a network partition does (no
refusal, no reset: silence); ``resume`` carries on.

``requests`` counts what clients sent as it arrived, one count per chunk:
under a protocol where the client waits for each answer before it sends
again (PostgreSQL's, without pipelining), its round trips."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any


class Relay:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.requests = 0
        self.flowing = asyncio.Event()
        self.flowing.set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def open(self) -> None:
        if self.server is None:
            self.server = self._run(self._listen())

    def close(self) -> None:
        self._run(self._close())

    def hang(self) -> None:
        self.loop.call_soon_threadsafe(self.flowing.clear)

    def resume(self) -> None:
        self.loop.call_soon_threadsafe(self.flowing.set)

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._pipe, "127.0.0.1", self.port, reuse_address=True)

    async def _close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for writer in list(self.writers):
            writer.close()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        pair = {writer, up_writer}
        self.writers |= pair

        async def copy(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, counted: bool
        ) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    await self.flowing.wait()
                    self.requests += counted
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(
            copy(reader, up_writer, counted=True), copy(up_reader, writer, counted=False)
        )
        self.writers -= pair
