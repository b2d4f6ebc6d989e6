"""``python -m gateway.ws.schema``: the JSON Schema of protocol ``chat-gateway.v1``.

Generated from the pydantic models in :mod:`gateway.ws.messages`, so the schema
cannot drift from what the endpoint validates. The output is committed as
``docs/protocol.schema.json`` (a test checks it is current).
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

from gateway.ws.messages import CLIENT_MESSAGES, PROTOCOL, SERVER_MESSAGES

_REF = "#/$defs/{model}"


def protocol_schema() -> dict[str, Any]:
    client = CLIENT_MESSAGES.json_schema(ref_template=_REF)
    server = SERVER_MESSAGES.json_schema(ref_template=_REF)
    defs: dict[str, Any] = {**client.pop("$defs", {}), **server.pop("$defs", {})}
    defs["ClientMessage"] = client
    defs["ServerMessage"] = server
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:chat-gateway:{PROTOCOL}",
        "title": f"WebSocket protocol {PROTOCOL}",
        "description": (
            "Every frame is one JSON text message with a 'type'. ClientMessage: what a "
            "client sends; ServerMessage: what the server sends. See docs/protocol.md."
        ),
        "oneOf": [{"$ref": "#/$defs/ClientMessage"}, {"$ref": "#/$defs/ServerMessage"}],
        "$defs": dict(sorted(defs.items())),
    }


def render() -> bytes:
    return orjson.dumps(protocol_schema(), option=orjson.OPT_INDENT_2) + b"\n"


def main() -> None:
    sys.stdout.buffer.write(render())


if __name__ == "__main__":
    main()
