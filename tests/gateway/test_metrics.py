"""``GET /metrics``: the Prometheus figures, driven through real HTTP and WebSocket traffic."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics
from gateway.telemetry import ChatSummary
from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.openai import create_app as openai_fake
from tests.gateway.ui import _support as ui
from tests.gateway.ws import _support as ws

pytestmark = pytest.mark.anyio


async def scrape(
    http: httpx.AsyncClient, **headers: str
) -> dict[tuple[str, tuple[Any, ...]], float]:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[Any, ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_chat_requests_sockets_cancels_and_resumes_are_counted() -> None:
    async with (
        ws.gateway(demo_token_delay_ms=20) as gw,
        httpx.AsyncClient(base_url=gw.base) as http,
    ):
        before = await scrape(http)
        assert value(before, "gateway_ws_sockets_open") == 0
        assert value(before, "gateway_circuit_state", provider="demo") == 0

        ok = await http.post(
            "/api/v1/chat/completions",
            json={"model": "demo/echo", "messages": ws.user("one two three")},
        )
        assert ok.status_code == 200

        client = await gw.open()
        running = await scrape(http)
        assert value(running, "gateway_ws_sockets_open") == 1
        request_id = await client.create("a b c d e f g h i j k l m n o p", model="demo/echo")
        created = await client.next("response.created")
        await client.next("response.output_text.delta")
        answering = await scrape(http)
        assert value(answering, "gateway_responses_running") == 1
        # The socket and its answer run as tasks of the loop the scrape is served in.
        assert (
            value(answering, "gateway_event_loop_tasks")
            > value(before, "gateway_event_loop_tasks")
            > 0
        )
        await client.send("response.cancel", request_id=request_id)
        done = await client.next("response.done")
        assert done["status"] == "cancelled"
        await client.send(
            "response.resume", response_id="resp_nope", epoch=created["epoch"], last_seq=0
        )
        await client.next("resume.result")
        await client.aclose()

        with_traffic = await scrape(http)
        assert value(with_traffic, "gateway_ws_sockets_open") == 0
        assert (
            value(
                with_traffic,
                "gateway_chat_requests_total",
                transport="http",
                status="ok",
                reason="none",
                provider="demo",
            )
            == 1
        )
        cancelled = [
            v
            for (name, labels), v in with_traffic.items()
            if name == "gateway_chat_requests_total"
            and dict(labels)["transport"] == "ws"
            and dict(labels)["status"] == "cancelled"
        ]
        assert cancelled == [1.0]
        assert value(with_traffic, "gateway_cancels_total", transport="ws") == 1
        assert value(with_traffic, "gateway_cancel_latency_seconds_count", transport="ws") == 1
        assert value(with_traffic, "gateway_resume_attempts_total", recovered="false") == 1
        assert value(with_traffic, "gateway_ws_closes_total", code="client") == 1
        assert value(with_traffic, "gateway_ws_frames_sent_total") >= 4
        assert (
            value(
                with_traffic,
                "gateway_time_to_first_token_seconds_count",
                transport="ws",
                provider="demo",
            )
            == 1
        )
        assert (
            value(
                with_traffic, "gateway_tokens_total", direction="out", provider="demo", model="echo"
            )
            > 0
        )


async def test_upstream_errors_and_retries_are_counted() -> None:
    upstream = FakeUpstream()
    upstream.queue(Scenario(status=503), Scenario())
    async with serve(openai_fake(upstream)) as base:
        config = {
            "openai_base_url": f"{base}/v1",
            "openai_api_key": "sk-test",
            "retry": {"max_attempts": 2, "backoff_initial_s": 0.01},
        }
        async with ws.gateway(**config) as gw, httpx.AsyncClient(base_url=gw.base) as http:
            ok = await http.post(
                "/api/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": ws.user("hi")},
            )
            assert ok.status_code == 200
            samples = await scrape(http)
    assert (
        value(
            samples, "gateway_upstream_errors_total", provider="openai", code="upstream_unavailable"
        )
        == 1
    )
    assert value(samples, "gateway_upstream_retries_total", provider="openai") == 1
    assert value(samples, "gateway_circuit_state", provider="openai") == 0


async def test_one_provider_failure_is_counted_alike_on_every_transport() -> None:
    # The provider refuses the gateway's key on opening: the same code and provider
    # label whether the request came over HTTP, the socket or the UI chat.
    upstream = FakeUpstream(api_key="sk-right-key-0123")
    async with serve(openai_fake(upstream)) as base:
        config = {"openai_base_url": f"{base}/v1", "openai_api_key": "sk-wrong-key-0123"}
        async with ws.gateway(**config) as gw, httpx.AsyncClient(base_url=gw.base) as http:
            refused = await http.post(
                "/api/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": ws.user("hi"), "stream": True},
            )
            assert refused.status_code == 502
            client = await gw.open()
            got = await client.response(await client.create("hi", model="gpt-4o-mini"))
            assert got.done["status"] == "failed"
            await client.aclose()
            async with ui.open_stream(
                http, "POST", "/api/v1/ui/chat", json=ui.body("hi", model="gpt-4o-mini")
            ) as parts:
                await parts.until("error")
            samples = await scrape(http)
    for transport in ("http", "ws", "ui"):
        labels = {"transport": transport, "status": "error", "provider": "openai"}
        counted = value(
            samples, "gateway_chat_requests_total", **labels, reason="upstream_auth_failed"
        )
        assert counted == 1, transport


async def test_a_metrics_token_is_required_when_set() -> None:
    async with (
        ws.gateway(metrics_token="scrape-secret-123") as gw,
        httpx.AsyncClient(base_url=gw.base) as http,
    ):
        denied = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"authorization": "Bearer nope"})
        assert denied.status_code == 401
        assert wrong.status_code == 401
        assert "scrape-secret" not in denied.text
        await scrape(http, authorization="Bearer scrape-secret-123")


async def test_two_apps_in_one_process_keep_their_own_counts() -> None:
    async with ws.gateway() as first, ws.gateway() as second:
        async with httpx.AsyncClient(base_url=first.base) as http:
            await http.post(
                "/api/v1/chat/completions",
                json={"model": "demo/echo", "messages": ws.user("hi")},
            )
        async with httpx.AsyncClient(base_url=second.base) as http:
            samples = await scrape(http)
    assert not any(name == "gateway_chat_requests_total" for name, _ in samples)


async def test_a_fallback_tokens_in_and_the_duration_are_counted() -> None:
    upstream = FakeUpstream()
    upstream.queue(Scenario(status=503))
    async with ws.fake_upstream("openai", upstream) as (_, overrides):
        config = {
            **overrides,
            "retry": {"max_attempts": 1},
            "fallbacks": {"gpt-4o-mini": ["demo/echo"]},
        }
        async with ws.gateway(**config) as gw, httpx.AsyncClient(base_url=gw.base) as http:
            fell_back = await http.post(
                "/api/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": ws.user("one two three")},
            )
            assert fell_back.status_code == 200, fell_back.text
            upstream.queue(Scenario(usage=(11, 4)))
            direct = await http.post(
                "/api/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": ws.user("hi")},
            )
            assert direct.status_code == 200, direct.text
            samples = await scrape(http)
    assert len(upstream.requests) == 2
    assert (
        value(
            samples, "gateway_upstream_fallbacks_total", from_provider="openai", to_provider="demo"
        )
        == 1
    )
    assert (
        value(
            samples, "gateway_tokens_total", direction="in", provider="openai", model="gpt-4o-mini"
        )
        == 11
    )
    # The demo provider counts words in: the fallback's tokens are its own.
    assert value(samples, "gateway_tokens_total", direction="in", provider="demo", model="echo") > 0
    for provider in ("openai", "demo"):
        count = value(
            samples,
            "gateway_request_duration_seconds_count",
            transport="http",
            provider=provider,
        )
        assert count == 1, provider


async def test_the_circuit_gauge_shows_an_open_breaker() -> None:
    upstream = FakeUpstream(Scenario(status=503))
    async with ws.fake_upstream("openai", upstream) as (_, overrides):
        config = {
            **overrides,
            "retry": {"max_attempts": 1},
            "circuit_breaker": {"failure_threshold": 2, "open_s": 60},
        }
        async with ws.gateway(**config) as gw, httpx.AsyncClient(base_url=gw.base) as http:
            states = []
            for _ in range(3):
                failed = await http.post(
                    "/api/v1/chat/completions",
                    json={"model": "gpt-4o-mini", "messages": ws.user("hi")},
                )
                assert failed.status_code == 503, failed.text
                states.append(value(await scrape(http), "gateway_circuit_state", provider="openai"))
    # Closed after one failure, open (2) after the threshold; the third never reached it.
    assert states == [0, 2, 2]
    assert len(upstream.requests) == 2


async def test_merged_deltas_and_a_4013_close_are_counted() -> None:
    tokens = [f" {i:04d}" + "y" * 195 for i in range(1000)]
    async with ws.fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=tokens, delay_s=0.005))
        async with ws.gateway(
            outbox_max_bytes=64 * 1024,
            outbox_drain_timeout_ms=400,
            resume_window_ms=0,
            send_buffer=ws.SMALL_BUFFER,
            **overrides,
        ) as gw:
            client = await ws.stalled_client(gw)
            outbox = ws.only_outbox(gw)
            await client.create("hi", model="openai/gpt-4o-mini")  # and never read again
            (record,) = await upstream.wait_for_requests(1)
            with anyio.fail_after(5):
                await record.ended.wait()  # the gateway gave up on the client
            assert await client.closed() == 4013
            assert gw.services.sockets is not None
            with anyio.fail_after(5):
                await gw.services.sockets.wait_empty()  # the socket's end is counted
            async with httpx.AsyncClient(base_url=gw.base) as http:
                samples = await scrape(http)
    assert outbox.merged > 0
    assert value(samples, "gateway_ws_deltas_merged_total") == outbox.merged
    assert value(samples, "gateway_ws_closes_total", code="4013") == 1
    assert value(samples, "gateway_ws_frames_sent_total") == outbox.frames_sent


async def test_a_successful_resume_is_counted_as_recovered() -> None:
    async with ws.fake_upstream() as (upstream, overrides):
        upstream.queue(Scenario(tokens=[f"t{i} " for i in range(40)], delay_s=0.01))
        async with (
            ws.gateway(resume_window_ms=5_000, **overrides) as gw,
            httpx.AsyncClient(base_url=gw.base) as http,
        ):
            client = await gw.open()
            await client.create("hi", model="openai/gpt-4o-mini")
            created = await client.next("response.created")
            delta = await client.next("response.output_text.delta")
            await client.aclose()
            again = await gw.open()
            result = await again.resume(created, delta["seq"])
            assert result["recovered"] is True
            frames = await again.frames_of(created["response_id"])
            assert frames[-1]["status"] == "completed"
            await again.aclose()
            samples = await scrape(http)
    assert value(samples, "gateway_resume_attempts_total", recovered="true") == 1
    assert value(samples, "gateway_resume_attempts_total", recovered="false") == 0


async def test_a_ui_stop_is_counted_as_a_cancel() -> None:
    slow = Scenario(tokens=[f" t{i}" for i in range(400)], delay_s=0.01)
    async with ws.fake_upstream() as (upstream, overrides), ws.gateway(**overrides) as gw:
        upstream.queue(slow)
        async with httpx.AsyncClient(base_url=gw.base, timeout=10) as http:
            url = "/api/v1/ui/chat"
            async with ui.open_stream(
                http, "POST", url, json=ui.body("x", model="openai/gpt-4o-mini")
            ) as parts:
                await parts.until("text-delta")
                stop = await http.post(f"{url}/chat-1/stop")
                assert stop.json() == {"id": "chat-1", "stopped": True}
                await parts.rest()
            # Nothing running: a second Stop stops nothing and is not counted.
            assert (await http.post(f"{url}/chat-1/stop")).json()["stopped"] is False
            samples = await scrape(http)
    assert value(samples, "gateway_cancels_total", transport="ui") == 1
    assert value(samples, "gateway_cancel_latency_seconds_count", transport="ui") == 1


def test_requests_with_the_same_labels_add_up_in_one_series_and_others_get_their_own() -> None:
    # Metrics keeps each labelled child after its first use: a second request with
    # the same labels must count on, one with other labels must not share its child.
    metrics = Metrics()

    def observe(provider: str, status: str, output_tokens: int) -> None:
        summary = ChatSummary("req_1", "http", "key", "m", stream=True, status=status)
        summary.routed(provider, "m")
        summary.output_tokens = output_tokens
        metrics.observe_chat(summary)

    observe("openai", "ok", 3)
    observe("openai", "ok", 4)
    observe("anthropic", "error", 5)
    samples = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    requests = "gateway_chat_requests_total"
    base = {"transport": "http", "reason": "none"}
    assert value(samples, requests, **base, status="ok", provider="openai") == 2
    assert value(samples, requests, **base, status="error", provider="anthropic") == 1
    tokens = "gateway_tokens_total"
    assert value(samples, tokens, direction="out", provider="openai", model="m") == 7
    assert value(samples, tokens, direction="out", provider="anthropic", model="m") == 5
    duration = "gateway_request_duration_seconds_count"
    assert value(samples, duration, transport="http", provider="openai") == 2
