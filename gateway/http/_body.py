"""Reading an HTTP request body with a size limit enforced while it arrives.

``Request.body()`` buffers whatever the client sends; a few 50 MB bodies would
exhaust memory before any validation ran. Here a declared ``content-length``
over the limit is refused before a byte is read, and a chunked (or lying) body
is counted as it streams in and refused at the first chunk past the limit: the
rest is never buffered (uvicorn closes the connection instead of reading it).
"""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import BadRequest, RequestTooLarge


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, or :class:`RequestTooLarge` (413) once it passes ``max_bytes``.

    Raises ``starlette.requests.ClientDisconnect`` when the client leaves mid-body.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise BadRequest("the content-length header is not a number") from None
        if length > max_bytes:
            raise _too_large(max_bytes)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"the request body exceeds {max_bytes} bytes (setting GATEWAY_MAX_REQUEST_BYTES)"
    )
