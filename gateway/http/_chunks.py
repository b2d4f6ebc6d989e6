"""OpenAI ``chat.completion.chunk`` SSE events, built cheaply.

Everything that is the same for every chunk of a response is serialised once;
a content delta is then two byte concatenations around ``orjson.dumps(text)``.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.providers.base import Usage

DONE = b"data: [DONE]\n\n"


class ChunkWriter:
    __slots__ = ("_base", "_content_head", "_content_tail", "_include_usage")

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._base: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        # Serialise a template once and split it at the placeholder: what comes
        # before and after the delta text never changes within one response.
        marker = "\x00TEXT\x00"
        template = orjson.dumps(self._chunk({"content": marker}, None))
        head, tail = template.rsplit(orjson.dumps(marker), 1)  # the delta comes last
        self._content_head = b"data: " + head
        self._content_tail = tail + b"\n\n"

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        chunk = {
            **self._base,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: null on all but the usage chunk
        return chunk

    def role(self) -> bytes:
        return _event(self._chunk({"role": "assistant", "content": ""}, None))

    def content(self, text: str) -> bytes:
        return self._content_head + orjson.dumps(text) + self._content_tail

    def reasoning(self, text: str) -> bytes:
        # OpenAI's own API streams no reasoning text; compatible servers (DeepSeek,
        # vLLM) carry it as ``reasoning_content``, which clients already read.
        return _event(self._chunk({"reasoning_content": text}, None))

    def tool_call_start(self, index: int, call_id: str, name: str) -> bytes:
        """The first piece of a tool call: index, id, type and name, empty arguments."""
        call = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return _event(self._chunk({"tool_calls": [call]}, None))

    def tool_call_arguments(self, index: int, arguments: str) -> bytes:
        """A further piece of a tool call's arguments: index and fragment only."""
        call = {"index": index, "function": {"arguments": arguments}}
        return _event(self._chunk({"tool_calls": [call]}, None))

    def finish(self, reason: str) -> bytes:
        return _event(self._chunk({}, reason))

    def usage(self, usage: Usage | None) -> bytes:
        prompt = (usage.input_tokens if usage else None) or 0
        completion = (usage.output_tokens if usage else None) or 0
        chunk = {
            **self._base,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        return _event(chunk)

    @staticmethod
    def error(err: GatewayError) -> bytes:
        """The in-band SSE error event, once the 200 has been sent."""
        return _event({"error": err.to_dict()})

    @staticmethod
    def error_body(err: GatewayError) -> bytes:
        """The plain JSON error body, while the status can still say it."""
        return orjson.dumps({"error": err.to_dict()})


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
