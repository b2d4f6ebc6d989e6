"""A minimal Server-Sent Events parser for the streaming adapters.

It runs once per upstream line, so it does as little as possible: no objects
per event beyond the ``(event, data)`` tuple, ``id:``/``retry:`` fields are
skipped (no adapter needs them), and a single ``data:`` line -- the only shape
OpenAI and Anthropic send -- is passed through without joining.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

DEFAULT_EVENT = "message"


async def iter_sse(lines: AsyncIterable[str]) -> AsyncIterator[tuple[str, str]]:
    """Turn SSE text lines (without line terminators) into ``(event, data)`` pairs.

    Comment lines (``: ping`` keep-alives) are ignored; a blank line dispatches
    the pending event. An event cut off by the end of the stream is dropped, as
    the SSE specification requires: a truncated ``data:`` line is not JSON.
    """
    event = DEFAULT_EVENT
    data: str | None = None
    extra: list[str] | None = None  # only for the rare multi-line data
    async for line in lines:
        if not line:
            if data is not None:
                if extra is not None:
                    data = "\n".join([data, *extra])
                    extra = None
                yield event, data
                data = None
            event = DEFAULT_EVENT
            continue
        if line[0] == ":":
            continue
        if line.startswith("data:"):
            value = line[6:] if line.startswith(" ", 5) else line[5:]
            if data is None:
                data = value
            elif extra is None:
                extra = [value]
            else:
                extra.append(value)
        elif line.startswith("event:"):
            event = line[7:] if line.startswith(" ", 6) else line[6:]
