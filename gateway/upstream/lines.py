"""Splitting a streamed body into lines, as bytes, one network read at a time.

SSE and NDJSON are line protocols. Splitting whole reads with ``bytes.split``
and parsing each line with orjson straight from bytes skips the text decoding
and the per-line async iteration of ``aiter_lines()``: the SSE and NDJSON
parsers get a plain list of lines per read. A newline byte never occurs inside
a multi-byte UTF-8 sequence, so splitting before decoding is safe.
"""

from __future__ import annotations

from gateway.upstream.errors import ProtocolError

# A line longer than this is not a streamed event but a broken or hostile upstream.
MAX_LINE_BYTES = 4 * 1024 * 1024


class LineDecoder:
    """Feed body bytes, get the complete lines (without terminators) they hold.

    Lines end with LF, CRLF or a lone CR, as SSE allows. A CR that ends a read ends
    its line at once; an LF opening the next read is then the rest of a CRLF.
    """

    __slots__ = ("_max", "_skip_lf", "_tail")

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._tail = b""
        self._skip_lf = False
        self._max = max_line_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buffer = self._tail + chunk if self._tail else chunk
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        tail = lines.pop()
        if len(tail) > self._max:
            raise ProtocolError(f"the response has a line longer than {self._max} bytes")
        self._tail = tail
        return lines

    def flush(self) -> list[bytes]:
        """The unterminated last line, if any (at the end of the body)."""
        tail, self._tail = self._tail, b""
        return [tail] if tail else []
