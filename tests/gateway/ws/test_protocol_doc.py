"""docs/protocol.md lists every error code, close code and ``response.done`` reason the
WebSocket can send.

A code added to ``gateway/errors.py`` or ``gateway/ws/close_codes.py`` without a line in
the protocol document fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from gateway import errors
from gateway.settings import load_settings
from gateway.ws import close_codes
from sessions import Reason

DOC = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text(encoding="utf-8")

# Codes of the hierarchy that only HTTP error bodies carry, never an ``error`` frame:
HTTP_ONLY = {
    # Malformed HTTP bodies and the handshake's missing subprotocol (HTTP 400); a bad
    # frame is its subclass ``invalid_message``.
    "bad_request",
    # The handshake's refusal (HTTP 401): a socket only exists once authenticated.
    "unauthorized",
    # A plain HTTP request to the WebSocket route (HTTP 426).
    "upgrade_required",
    # GET /api/v1/models/{provider}; on the socket the router resolves only configured
    # providers and answers ``model_not_found`` for the rest.
    "provider_not_found",
}

# Close codes the document lists that gateway/ws/close_codes.py does not send itself:
CLOSED_BY_THE_WEBSOCKET_LAYER = {
    1007,  # invalid UTF-8 in a text frame: uvicorn's WebSocket implementation closes it
}


def _section(start: str, end: str) -> str:
    begin = DOC.index(start)
    return DOC[begin : DOC.index(end, begin)]


def _hierarchy_codes() -> set[str]:
    codes: set[str] = set()
    pending: list[type[errors.GatewayError]] = [errors.GatewayError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def _documented_error_codes() -> set[str]:
    """The codes each bullet of the list starts with (before its ``:``, asides dropped)."""
    listed = _section("Error codes (from `gateway/errors.py`", "**`resume.result`**")
    codes: set[str] = set()
    for item in re.split(r"\n(?=- )", listed):
        if item.startswith("- "):
            lead = re.sub(r"\([^)]*\)", "", " ".join(item[2:].split())).split(":", 1)[0]
            codes.update(re.findall(r"`([a-z_]+)`", lead))
    return codes


def _documented_close_codes() -> set[int]:
    table = _section("## Close codes", "\n## ")
    return {int(code) for code in re.findall(r"^\| (\d{4}) \|", table, re.MULTILINE)}


def _sent_close_codes() -> set[int]:
    return {
        value
        for name, value in vars(close_codes).items()
        if name.isupper() and isinstance(value, int)
    } | set(close_codes.REASONS)


def test_every_websocket_error_code_is_documented() -> None:
    codes = _hierarchy_codes()
    assert codes >= HTTP_ONLY, "HTTP_ONLY names a code the hierarchy no longer has"
    missing = sorted(codes - HTTP_ONLY - _documented_error_codes())
    assert not missing, f"error codes missing from docs/protocol.md's list: {missing}"


def test_the_list_names_no_code_the_gateway_lacks() -> None:
    unknown = sorted(_documented_error_codes() - _hierarchy_codes())
    assert not unknown, f"docs/protocol.md lists error codes gateway/errors.py lacks: {unknown}"


def test_every_close_code_is_in_the_close_code_table() -> None:
    documented = _documented_close_codes()
    sent = _sent_close_codes()
    assert sent, "no close codes found in gateway/ws/close_codes.py"
    assert not sent - documented, f"close codes missing from the table: {sorted(sent - documented)}"
    assert documented - sent == CLOSED_BY_THE_WEBSOCKET_LAYER


def test_every_done_reason_is_in_the_status_table() -> None:
    table = _section("| `status` | `reason` | when |", "\n\n")
    documented = set(re.findall(r"^\| `[a-z]+` \| `([a-z_]+)` \|", table, re.MULTILINE))
    missing = sorted({reason.value for reason in Reason} - documented)
    assert not missing, f"response.done reasons missing from the status table: {missing}"


def test_the_client_examples_output_counts_the_default_agents_instructions() -> None:
    # The demo counts words, and a socket's requests get the default agent's
    # instructions as their first message: those are input tokens too.
    example = _section("## Client example", "To stop an answer")
    sent = re.search(r'"content": "([^"]+)"', example)
    usage = re.search(r"\{'input_tokens': (\d+), 'output_tokens': (\d+)\}", example)
    assert sent is not None and usage is not None
    settings = load_settings()
    assert settings.ws_default_agent is not None
    instructions = settings.agents[settings.ws_default_agent].instructions
    words = len(sent[1].split())
    assert (int(usage[1]), int(usage[2])) == (words + len(instructions.split()), words)
