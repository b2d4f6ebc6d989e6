"""The socket suite runs on uvloop and plain asyncio, like the SSE suite (same fixture)."""

from tests.gateway.http.conftest import anyio_backend

__all__ = ["anyio_backend"]
