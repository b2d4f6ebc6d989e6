"""A minimal, incremental Server-Sent Events parser for the streaming adapters.

It runs once per upstream read, synchronously, on bytes: a read's lines are
parsed in one loop and its complete events returned as a list, so the adapter
awaits once per read instead of once per line. Data stays ``bytes`` because
orjson parses it from bytes directly; event names become ``str``. ``id:`` and
``retry:`` fields are skipped (no adapter needs them), and a single ``data:``
line -- the only shape OpenAI and Anthropic send -- is passed on without joining.
"""

from __future__ import annotations

from gateway.upstream import LineDecoder

DEFAULT_EVENT = "message"
_BOM = b"\xef\xbb\xbf"


class SseDecoder:
    """Feed body bytes, get the ``(event, data)`` pairs they complete.

    Comment lines (``: ping`` keep-alives) are ignored; a blank line dispatches the
    pending event. An event cut off by the end of the stream is never returned,
    as the SSE specification requires: a truncated ``data:`` line is not JSON.
    """

    __slots__ = ("_data", "_event", "_extra", "_lines", "_started")

    def __init__(self) -> None:
        self._lines = LineDecoder()
        self._event = DEFAULT_EVENT
        self._data: bytes | None = None
        self._extra: list[bytes] | None = None  # only for the rare multi-line data
        self._started = False

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        if not self._started:
            self._started = True
            chunk = chunk.removeprefix(_BOM)
        events: list[tuple[str, bytes]] = []
        for line in self._lines.feed(chunk):
            if not line:
                data = self._data
                if data is not None:
                    if self._extra is not None:
                        data = b"\n".join([data, *self._extra])
                        self._extra = None
                    events.append((self._event, data))
                    self._data = None
                self._event = DEFAULT_EVENT
            elif line.startswith(b"data:"):
                value = line[6:] if line[5:6] == b" " else line[5:]
                if self._data is None:
                    self._data = value
                elif self._extra is None:
                    self._extra = [value]
                else:
                    self._extra.append(value)
            elif line.startswith(b"event:"):
                name = line[7:] if line[6:7] == b" " else line[6:]
                self._event = name.decode("utf-8", "replace")
            # ":" comments, "id:", "retry:" and unknown fields: nothing to do.
        return events
