"""A raw HTTP/1.1 server on loopback for the transport's edge cases.

Each accepted connection is handed to a script: an async function that reads
requests and writes whatever bytes it likes (malformed heads, 1xx responses,
bodies ended by a close, stalls). The server counts connections and records
every request it read, so tests can tell a reused connection from a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class RawRequest:
    head: bytes
    body: bytes

    @property
    def line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    def header(self, name: str) -> str | None:
        for raw in self.head.split(b"\r\n")[1:]:
            key, _, value = raw.partition(b":")
            if key.strip().lower() == name.encode():
                return value.strip().decode()
        return None


@dataclass
class Peer:
    """One accepted connection, as its script sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: RawServer

    async def request(self) -> RawRequest | None:
        """The next request on this connection; ``None`` once the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        request = RawRequest(head, b"")
        length = int(request.header("content-length") or 0)
        request.body = await self.reader.readexactly(length)
        self.server.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_client(self) -> bool:
        """Wait until the client closes; True if it did (EOF or reset)."""
        try:
            return await self.reader.read(1) == b""
        except ConnectionError:
            return True


Script = Callable[[Peer], Awaitable[None]]


@dataclass
class RawServer:
    script: Script
    connections: int = 0
    requests: list[RawRequest] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # a script returned
    url: str = ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(Peer(reader, writer, self))
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()  # the FIN is on its way when ``ended`` is set
            self.ended.set()


@contextlib.asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[RawServer]:
    server = RawServer(script)
    listener = await asyncio.start_server(server._handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


def response(
    body: bytes = b"ok", *, status: str = "200 OK", headers: tuple[str, ...] = ()
) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def keep_answering(peer: Peer) -> None:
    """Answer every request on the connection with ``ok`` until the client leaves."""
    while await peer.request() is not None:
        await peer.send(response())
