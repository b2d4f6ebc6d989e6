"""Parsing JSON sent by clients, with errors that say what is wrong.

orjson refuses documents nested deeper than 1024 levels (a guard against
stack exhaustion); its error says "depth limit exceeded", which a client
reading "not valid JSON" would never guess. Both transports parse through here.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from gateway.errors import BadRequest

MAX_DEPTH: Final = 1024  # orjson's own limit, fixed in the library


def loads(raw: bytes | str, *, what: str, error: type[BadRequest] = BadRequest) -> Any:
    """``raw`` as a JSON value, or ``error`` naming ``what`` and the problem."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise error(f"{what} nests deeper than {MAX_DEPTH} levels") from None
        raise error(f"{what} is not valid JSON") from None
