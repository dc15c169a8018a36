"""A TCP proxy in front of a real server (PostgreSQL), to take it away mid-run: `cut()` drops
every connection and refuses new ones, `stall()` accepts and forwards nothing (a hung server),
`restore()` forwards again. Runs on its own thread and event loop, so the code under test sees
a real network peer."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or _free_port()
        self.mode = "forward"  # forward | stall | cut
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self._call(self._close())
        self._call(self._cancel_tasks())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def cut(self) -> None:
        """Drop every connection and refuse new ones (the server is down)."""
        self.mode = "cut"
        self._call(self._close())

    def stall(self) -> None:
        """Accept connections and send nothing either way (the server hangs)."""
        self.mode = "stall"
        self._call(self._drop_connections())
        if self._server is None:
            self._call(self._listen())

    def restore(self) -> None:
        self.mode = "forward"
        if self._server is None:
            self._call(self._listen())

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port,
                                                  reuse_address=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._drop_connections()

    async def _drop_connections(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.mode != "forward":
            return  # held open, never answered (stall); `cut` closes the listener itself
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while self.mode == "forward" and (data := await reader.read(65536)):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # the other side went away, or the proxy cut it: nothing to forward
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def tcp_proxy(target_host: str, target_port: int, *, listening: bool = True
              ) -> Iterator[TcpProxy]:
    """A proxy to the target; with `listening=False` its port is chosen but nothing listens
    until `restore()` (a database that is down when the app starts)."""
    proxy = TcpProxy(target_host, target_port)
    proxy._thread.start()
    if listening:
        proxy._call(proxy._listen())
    try:
        yield proxy
    finally:
        proxy.stop()
