"""Real nginx, configured by the committed deploy/nginx.conf, in front of two real
gateway processes that share a throwaway Redis (tests/scaleout/_cluster.py).

What only a real proxy shows: the WebSocket upgrade and its close codes pass through,
the browser ``Origin`` check still holds behind it (``Host`` keeps its port), a
replica's drain moves a client to the other replica where its answer resumes whole,
a stopped replica's connects are retried on the other one, and Server-Sent Events
are passed on as they come -- and a client hanging up stops the provider.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import anyio
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from tests.fakes import Scenario
from tests.gateway.ws._support import PROTOCOL, Client, Frame, user
from tests.redis_server import RedisServer, free_port
from tests.scaleout import _nginx
from tests.scaleout._cluster import Cluster, Instance, cluster

pytestmark = [
    pytest.mark.skipif(_nginx.binary() is None, reason="no nginx binary (.ci/run installs it)"),
    pytest.mark.timeout(120),
]

TOKENS = [f" t{i}" for i in range(40)]
WAIT_S = 15.0
# Long enough for the answer to finish on the draining replica (40 x 0.1 s).
DRAIN = {"GATEWAY_DRAIN_TIMEOUT_S": "15"}


def _text(frames: list[Frame]) -> str:
    return "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")


def _upstreams(c: Cluster) -> list[str]:
    return [f"127.0.0.1:{instance.port}" for instance in c.instances.values()]


async def _open(lb: _nginx.Nginx) -> Client:
    """A browser-like client through nginx: it sends the page's own Origin, which the
    gateway accepts only if nginx passed the Host header on with its port."""
    ws = await connect(lb.ws_url, subprotocols=[PROTOCOL], origin=Origin(lb.base), max_queue=None)
    client = Client(ws)
    await client.next("session.created", within=WAIT_S)
    return client


async def _open_sockets(instance: Instance) -> float:
    async with instance.http() as http:
        metrics = (await http.get("/metrics")).text
    found = re.search(r"^gateway_ws_sockets_open (\S+)$", metrics, re.M)
    assert found is not None, "gateway_ws_sockets_open not in /metrics"
    return float(found[1])


def test_the_rendered_committed_config_passes_nginx_t(tmp_path: Path) -> None:
    config = _nginx.write_config(["127.0.0.1:1", "127.0.0.1:2"], free_port(), tmp_path)
    result = subprocess.run(
        _nginx.command(config, tmp_path, "-t"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    # Only the documented lines changed: everything else is the committed file's.
    rendered = config.read_text()
    for line in _nginx.COMMITTED.read_text().splitlines():
        if "gateway-" not in line and "listen 8080" not in line and "access_log /dev" not in line:
            assert line in rendered, line


@pytest.mark.anyio
async def test_a_drained_replica_hands_its_socket_to_the_other_which_resumes_it_whole(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with (
        cluster(redis_server, env=DRAIN) as c,
        _nginx.running(_upstreams(c), free_port(), tmp_path / "nginx") as lb,
    ):
        c.upstream.queue(Scenario(tokens=TOKENS, delay_s=0.1))
        first = await _open(lb)
        request_id = await first.create("hello")
        created = await first.next("response.created", within=WAIT_S)
        response_id, epoch = created["response_id"], created["epoch"]
        await first.next("response.output_text.delta", within=WAIT_S)

        counts = {name: await _open_sockets(i) for name, i in c.instances.items()}
        assert sorted(counts.values()) == [0, 1], counts
        owner = c.a if counts["a"] == 1 else c.b
        other = c.b if owner is c.a else c.a

        # A rolling deploy stops the replica holding the socket.
        assert owner.process is not None
        owner.process.terminate()
        draining = await first.next("server.draining", within=WAIT_S)
        assert draining["deadline_ms"] > 0
        # The draining replica takes no new sockets: told, then closed 1012.
        async with owner.connect() as direct:
            await direct.next("session.created", within=WAIT_S)
            await direct.next("server.draining", within=WAIT_S)
            assert await direct.closed() == 1012

        # The client moves off (as docs/protocol.md advises) and reconnects through
        # nginx until it reaches a replica that is not draining: one that lands on the
        # draining one again is closed 1012, through nginx.
        seen = [f for f in first.frames if f.get("response_id") == response_id]
        await first.aclose()
        for _ in range(6):
            second = await _open(lb)
            await second.send("ping", ts=1)
            answer = await second.next(
                where=lambda f: f["type"] in ("pong", "server.draining"), within=WAIT_S
            )
            if answer["type"] == "pong":
                break
            assert await second.closed() == 1012
        else:
            pytest.fail("nginx never reached the replica that is not draining")
        assert await _open_sockets(other) == 1

        last_seq = max(f["seq"] for f in seen)
        await second.send(
            "response.resume", response_id=response_id, epoch=epoch, last_seq=last_seq
        )
        result = await second.next("resume.result", within=WAIT_S)
        assert (result["recovered"], result["from_seq"]) == (True, last_seq + 1)
        rest = await second.frames_of(response_id)
        assert rest[0]["seq"] > last_seq
        seqs = [f["seq"] for f in rest]
        assert seqs == sorted(set(seqs))
        assert _text(seen) + _text(rest) == "".join(TOKENS)  # every token exactly once
        assert (rest[-1]["status"], rest[-1]["request_id"]) == ("completed", request_id)
        assert len(c.upstream.requests) == 1

        # The drained replica exits once its answer is done.
        with anyio.fail_after(WAIT_S):
            assert await owner.process.wait() == 0

        # It is gone now: nginx picks it (fewest connections: the socket above is on
        # the other) and, refused, sends the request to the other replica -- a POST
        # too, as it never reached the stopped one.
        async with lb.http() as http:
            answer_http = await http.post(
                "/api/v1/chat/completions",
                json={"model": c.model, "messages": user("after the deploy")},
                headers={"x-request-id": "edge-123"},
            )
        assert answer_http.status_code == 200, answer_http.text
        await second.aclose()
        line = next(
            orjson.loads(entry)
            for entry in lb.access_log()
            if '"uri":"/api/v1/chat/completions"' in entry
        )
        stopped, alive = f"127.0.0.1:{owner.port}", f"127.0.0.1:{other.port}"
        assert line["upstream"] == f"{stopped}, {alive}", line
        assert line["upstream_status"] == "502, 200", line
        assert line["request_id"] == "edge-123"
        assert line["gateway_request_id"] == answer_http.headers["x-request-id"]


@pytest.mark.anyio
async def test_server_sent_events_pass_through_as_they_come_and_a_hang_up_stops_the_provider(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with (
        cluster(redis_server, names=("a",)) as c,
        _nginx.running(_upstreams(c), free_port(), tmp_path / "nginx") as lb,
    ):
        # A paced answer: a buffering proxy would show the client nothing until the end.
        tokens = [f" s{i}" for i in range(30)]
        c.upstream.queue(Scenario(tokens=tokens, delay_s=0.2))
        received = ""
        async with lb.http() as http:
            body = {"model": c.model, "stream": True, "messages": user("stream it")}
            async with http.stream("POST", "/api/v1/chat/completions", json=body) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                with anyio.fail_after(WAIT_S):
                    async for line in stream.aiter_lines():
                        if not line.startswith("data: {"):
                            continue
                        chunk = orjson.loads(line.removeprefix("data: "))
                        for choice in chunk["choices"]:
                            received += choice["delta"].get("content") or ""
                        if received == "".join(tokens[:3]):
                            break
                record = c.upstream.last
                # The first tokens arrived while the provider was still sending.
                assert record.outcome == "pending"
                assert record.chunks_sent < len(tokens)
        # The client hung up mid-answer: nginx closes its connection to the gateway,
        # and the gateway its connection to the provider.
        with anyio.fail_after(WAIT_S):
            await record.ended.wait()
        assert record.outcome == "disconnected"
        assert record.chunks_sent < len(tokens)


@pytest.mark.anyio
async def test_per_replica_endpoints_are_not_served_through_nginx(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with (
        cluster(redis_server, names=("a",), env={"GATEWAY_ADMIN_TOKEN": "admin-secret"}) as c,
        _nginx.running(_upstreams(c), free_port(), tmp_path / "nginx") as lb,
        lb.http() as edge,
        c.a.http() as direct,
    ):
        drain = {"authorization": "Bearer admin-secret"}
        assert (await edge.get("/metrics")).status_code == 404
        assert (await edge.post("/admin/drain", headers=drain)).status_code == 404
        assert (await edge.get("/health/ready")).status_code == 200  # still ready
        assert (await direct.get("/metrics")).status_code == 200
        assert (await direct.post("/admin/drain", headers=drain)).status_code < 300
        assert (await edge.get("/health/ready")).status_code == 503  # now draining
