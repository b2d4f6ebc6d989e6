"""The load drivers' lean WebSocket client: one asyncio protocol, frames parsed by hand.

The latency and cancel drivers share their core with the fake upstream (see
``procs.Placement``), so whatever CPU a client spends per frame delays the fake
and the client's own reads, and shows up as latency of the path being measured.
The ``websockets`` client costs about one and a half times the lean HTTP client's
CPU per frame; measuring the WebSocket path with it would charge the gateway for
the client's parser. This client does as little as :mod:`bench._lean_http`:
the RFC 6455 opening handshake, unmasked server frames (text, binary, ping,
close; fragments reassembled) and masked client text frames. No extensions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections import deque
from typing import cast
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY, _CONTINUATION, _CLOSE, _PING = 0x1, 0x2, 0x0, 0x8, 0x9


class ConnectionClosed(Exception):
    """The socket closed (by either side) before a frame arrived."""


class LeanSocket(asyncio.Protocol):
    """One client socket; :func:`connect` opens it."""

    def __init__(self, key: bytes) -> None:
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._messages: deque[bytes] = deque()
        self._fragments: list[bytes] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    # --- API ------------------------------------------------------------------------------

    async def recv(self) -> bytes:
        """The next text or binary message's payload."""
        while not self._messages:
            if self._closed:
                raise ConnectionClosed
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._messages.popleft()

    def send(self, text: str | bytes) -> None:
        """Send one text frame (written at once; the kernel buffers it)."""
        data = text.encode() if isinstance(text, str) else text
        self._write(_TEXT, data)

    def close(self) -> None:
        """Send a close frame (1000) and drop the connection without waiting."""
        if self._transport is not None and not self._transport.is_closing():
            self._write(_CLOSE, (1000).to_bytes(2, "big"))
            self._transport.close()
        self._set_closed()

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._opened.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            self._check_handshake(head)
            if not self._opened.done():
                return
        self._parse_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_exception(ConnectionClosed("closed during the handshake"))
        self._set_closed()

    # --- internals ---------------------------------------------------------------------

    def _check_handshake(self, head: str) -> None:
        status, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if not status.startswith("HTTP/1.1 101"):
            self._opened.set_exception(ConnectionClosed(f"handshake refused: {status}"))
        elif headers.get("sec-websocket-accept", "").encode() != self._accept:
            self._opened.set_exception(ConnectionClosed("bad Sec-WebSocket-Accept"))
        else:
            self._opened.set_result(None)

    def _parse_frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if second & 0x80:
                raise ConnectionClosed("the server masked a frame")
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            self._on_frame(first & 0x0F, bool(first & 0x80), payload)

    def _on_frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode in (_TEXT, _BINARY, _CONTINUATION):
            if opcode != _CONTINUATION:
                self._fragments = []
            assert self._fragments is not None
            self._fragments.append(payload)
            if fin:
                parts, self._fragments = self._fragments, None
                self._messages.append(parts[0] if len(parts) == 1 else b"".join(parts))
                self._wake()
        elif opcode == _PING:
            self._write(0xA, payload)
        elif opcode == _CLOSE:
            self.close()

    def _write(self, opcode: int, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionClosed
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = bytes((0x80 | opcode, 0x80 | n))
        elif n < 1 << 16:
            head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
        keystream = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(data, "big") ^ int.from_bytes(keystream, "big")).to_bytes(n, "big")
        transport.write(head + mask + masked)

    def _set_closed(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._waiter = None


async def connect(url: str, headers: dict[str, str], subprotocol: str) -> LeanSocket:
    """Open ``ws://host:port/path``; returns once the server accepted."""
    parts = urlsplit(url)
    assert parts.scheme == "ws" and parts.hostname is not None and parts.port is not None
    key = base64.b64encode(os.urandom(16))
    loop = asyncio.get_running_loop()
    _, socket = await loop.create_connection(lambda: LeanSocket(key), parts.hostname, parts.port)
    fields = {
        "host": parts.netloc,
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-key": key.decode(),
        "sec-websocket-version": "13",
        "sec-websocket-protocol": subprotocol,
        **headers,
    }
    request = f"GET {parts.path} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in fields.items()
    )
    assert socket._transport is not None
    socket._transport.write((request + "\r\n").encode())
    await socket._opened
    return socket
