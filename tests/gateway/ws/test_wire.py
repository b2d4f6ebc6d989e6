"""The hot-path encoders agree with the documented models, and the committed schema is current."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.errors import UpstreamUnavailable
from gateway.ws import wire
from gateway.ws.messages import SERVER_MESSAGES, Rejected, parse_client_message
from gateway.ws.schema import render
from sessions import Created, Done, ResponseMeta, ResumeResult, Status, TooManyResponses
from sessions.events import ReasoningDelta, ToolArgumentsDelta, ToolCallAdded, ToolCallDone

SCHEMA = Path(__file__).parents[3] / "docs" / "protocol.schema.json"


@pytest.mark.parametrize(
    "frame",
    [
        wire.event(Created("r1", "q1", 3, ResponseMeta("echo", "demo"))),
        wire.delta("r1", 4, "héllo"),
        wire.event(Done("r1", "q1", 5, Status.COMPLETED, None, "stop", 1, 2)),
        wire.event(
            Done("r1", "q1", 5, Status.FAILED, "upstream_error", error=UpstreamUnavailable("down"))
        ),
        wire.event(ResumeResult("r1", False, None)),
        wire.event(ToolCallAdded("r1", 1, 0, "call_1", "lookup")),
        wire.event(ToolArgumentsDelta("r1", 2, 0, '{"q": ', "call_1")),
        wire.event(ToolCallDone("r1", 3, 0, "call_1", "lookup", '{"q": 1}')),
        wire.event(ReasoningDelta("r1", 4, "hmm")),
        wire.error(TooManyResponses("max 4"), event_id="e1", request_id="q1"),
        wire.error(ValueError("secret content"), response_id="r1"),
    ],
)
def test_encoded_frames_validate_against_the_server_models(frame: bytes) -> None:
    SERVER_MESSAGES.validate_python(orjson.loads(frame))


def test_unexpected_exceptions_do_not_leak_their_text() -> None:
    body = orjson.loads(wire.error(ValueError("secret content")))["error"]
    assert body["code"] == "internal_error"
    assert "secret" not in body["message"]


def test_session_errors_map_to_gateway_codes() -> None:
    body = orjson.loads(wire.error(TooManyResponses("at most 4")))["error"]
    assert (body["code"], body["retryable"], body["type"]) == (
        "too_many_responses",
        True,
        "rate_limit_error",
    )


def test_parse_keeps_ids_of_rejected_messages() -> None:
    with pytest.raises(Rejected) as info:
        parse_client_message('{"type": "response.create", "request_id": "q", "event_id": "e"}')
    assert (info.value.request_id, info.value.event_id) == ("q", "e")
    assert info.value.error.code == "validation_error"


def test_committed_schema_is_current() -> None:
    assert SCHEMA.read_bytes() == render(), (
        "run: python -m gateway.ws.schema > docs/protocol.schema.json"
    )
