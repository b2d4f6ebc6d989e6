"""An upstream that refuses connections: one mapping for every provider, no address leaked.

Every provider's refused connection is the retryable ``upstream_unavailable``
(HTTP 503); what the client reads names the provider and the kind of failure,
never the internal host or port, which go to the request's summary log line.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import orjson
import pytest
import structlog

from gateway.errors import UpstreamUnavailable
from gateway.providers import ProviderRegistry
from gateway.providers.base import ChatMessage, ChatRequest
from gateway.router import Router
from gateway.settings import load_settings
from tests.fakes import Scenario
from tests.gateway.http import _support as http_support
from tests.gateway.ws import _support as ws_support

pytestmark = pytest.mark.anyio

PROVIDERS = {
    "openai": (
        "gpt-4o-mini",
        lambda base: {"openai_base_url": f"{base}/v1", "openai_api_key": "k"},
    ),
    "anthropic": ("claude-x", lambda base: {"anthropic_base_url": base, "anthropic_api_key": "k"}),
    "ollama": ("llama3:8b", lambda base: {"ollama_base_url": base}),
}
ONE_ATTEMPT = {"max_attempts": 1}


def dead(provider: str) -> tuple[str, str, dict[str, Any]]:
    """A model of ``provider`` pointed at a refusing port: (model, port, settings)."""
    port = str(http_support.closed_port())
    model, settings = PROVIDERS[provider]
    return f"{provider}/{model}", port, settings(f"http://127.0.0.1:{port}")


@pytest.mark.parametrize("transport", ["gateway", "httpx2"])
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_refused_is_upstream_unavailable_for_every_provider(
    provider: str, transport: str
) -> None:
    model, port, overrides = dead(provider)
    settings = load_settings(retry=ONE_ATTEMPT, upstream_transport=transport, **overrides)
    registry = ProviderRegistry(settings)
    router = Router(settings, registry)
    request = ChatRequest(model.split("/", 1)[1], (ChatMessage("user", "Hi"),))
    try:
        with pytest.raises(UpstreamUnavailable) as streamed:
            async with router.stream(router.resolve(model), request):
                pass
        with pytest.raises(UpstreamUnavailable) as completed:
            await router.complete(router.resolve(model), request)
        with pytest.raises(UpstreamUnavailable) as probed:
            await registry.get(provider).probe()
    finally:
        await registry.aclose()
    for caught in (streamed, completed, probed):
        err = caught.value
        assert (err.code, err.http_status, err.retryable) == ("upstream_unavailable", 503, True)
        assert err.provider == provider
        assert provider in err.message
        assert port not in err.message and "127.0.0.1" not in err.message
        assert err.detail is not None and port in err.detail  # for the log


@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_a_client_learns_provider_and_kind_but_no_address(
    provider: str, stream: bool
) -> None:
    model, port, overrides = dead(provider)
    config = http_support.settings(retry=ONE_ATTEMPT, **overrides)
    with structlog.testing.capture_logs() as logs:
        async with http_support.gateway(config) as gw, gw.http() as client:
            body = {"model": model, "messages": http_support.user("Hi"), "stream": stream}
            response = await client.post("/api/v1/chat/completions", json=body)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "upstream_unavailable"
    assert provider in error["message"]
    assert port not in response.text and "127.0.0.1" not in response.text
    # The summary line (which carries the request id) has the full detail.
    summaries = [entry for entry in logs if entry.get("event") == "chat.request"]
    assert len(summaries) == 1, logs
    assert summaries[0]["request_id"]
    assert port in summaries[0]["error_detail"]


async def test_a_websocket_client_learns_no_address() -> None:
    model, port, overrides = dead("openai")
    config = ws_support.settings(retry=ONE_ATTEMPT, **overrides)
    async with ws_support.gateway(config) as gw:
        client = await gw.open()
        try:
            request_id = await client.create("Hi", model=model)
            with anyio.fail_after(ws_support.WAIT_S):
                frame = await client.next(
                    where=lambda f: (
                        f.get("request_id") == request_id
                        and f["type"] in ("error", "response.done")
                    )
                )
        finally:
            await client.aclose()
    assert "upstream_unavailable" in str(frame)
    assert port not in str(client.frames) and "127.0.0.1" not in str(client.frames)


# --- other failures: a reset mid-stream, a first-token timeout ---------------------------

FAULTS = {
    # After two chunks the fake aborts the connection (no terminator).
    "reset mid-stream": (Scenario(reset_after=2), "upstream_error"),
    # Connected, but nothing ever comes: the first-token deadline fires.
    "first-token timeout": (Scenario(stall_after=0), "upstream_timeout"),
}
FAST_TIMEOUTS = {"connect_s": 2.0, "first_token_s": 0.3, "between_tokens_s": 2.0, "total_s": 8.0}


async def _client_sees(
    transport: str, gw: ws_support.Gateway, model: str
) -> tuple[str, dict[str, Any]]:
    """Everything the client read for one failed request, and the error in it."""
    if transport == "sse":
        async with httpx.AsyncClient(base_url=gw.base, timeout=10) as http:
            body = {"model": model, "messages": http_support.user("Hi"), "stream": True}
            response = await http.post("/api/v1/chat/completions", json=body)
        text = f"{response.headers!r}\n{response.text}"
        if response.status_code != 200:  # failed before the first token: a plain error
            return text, response.json()["error"]
        data = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e.strip()]
        assert data[-1] == "[DONE]", data[-3:]
        return text, orjson.loads(data[-2])["error"]
    client = await gw.open()
    try:
        collected = await client.response(await client.create("Hi", model=model), within=10)
    finally:
        await client.aclose()
    assert collected.done["status"] == "failed", collected.done
    return orjson.dumps(client.frames).decode(), collected.done["error"]


@pytest.mark.parametrize("transport", ["sse", "ws"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_other_failures_name_provider_and_kind_but_no_address(
    provider: str, fault: str, transport: str
) -> None:
    scenario, code = FAULTS[fault]
    async with ws_support.fake_upstream(provider) as (upstream, overrides):
        upstream.queue(scenario)
        config = ws_support.settings(
            retry=ONE_ATTEMPT, timeouts=FAST_TIMEOUTS, ws_default_agent="", **overrides
        )
        async with ws_support.gateway(config) as gw:
            seen, error = await _client_sees(transport, gw, f"{provider}/{PROVIDERS[provider][0]}")
        (record,) = upstream.requests
    base = next(v for k, v in overrides.items() if k.endswith("_base_url"))
    host_port = base.removeprefix("http://").split("/", 1)[0]
    port = host_port.rsplit(":", 1)[1]
    assert error["code"] == code
    assert provider in error["message"].lower(), error  # the provider, and the kind (code)
    assert host_port not in seen and f":{port}" not in seen and "127.0.0.1" not in seen
    assert record.path not in seen, record.path
