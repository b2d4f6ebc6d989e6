"""``GET /metrics``: the Prometheus figures, driven through real HTTP and WebSocket traffic."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.openai import create_app as openai_fake
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
