"""Ollama failures into the gateway's error hierarchy: error statuses and transport failures."""

from __future__ import annotations

import httpx2
import orjson

from gateway.errors import UpstreamError
from gateway.providers._errors import error_for_status

_NAME = "ollama"


def status_error(status: int, raw: bytes, headers: httpx2.Headers) -> UpstreamError:
    message = ""
    try:
        data = orjson.loads(raw)
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            message = data["error"]
    except orjson.JSONDecodeError:
        message = raw[:200].decode("utf-8", "replace")
    return error_for_status(_NAME, status, message or "no error message", headers)
