"""HTTPS through the upstream transport: a trusted certificate works, an untrusted one fails."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import trustme

from gateway.upstream import UpstreamTransport
from tests.fakes import FakeUpstream, Scenario, serve
from tests.fakes.openai import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert_files(authority: trustme.CA, tmp_path: Path) -> Iterator[tuple[str, str]]:
    issued = authority.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    issued.private_key_pem.write_to_path(str(key))
    yield str(cert), str(key)


async def test_https_streams_with_a_trusted_certificate_only(
    authority: trustme.CA, cert_files: tuple[str, str]
) -> None:
    cert, key = cert_files
    upstream = FakeUpstream(Scenario(tokens=["secure"]))
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    body = {"model": "gpt-4o-mini", "messages": [], "stream": True}
    async with serve(create_app(upstream), ssl_certfile=cert, ssl_keyfile=key) as base:
        url = base.replace("http://", "https://") + "/v1/chat/completions"
        transport = UpstreamTransport(ssl_context=trusted)
        async with httpx2.AsyncClient(transport=transport) as http:
            reply = await http.post(url, json=body)
            assert b'"content":"secure"' in reply.content
            assert transport.pool.open_connections == 1

        untrusting = UpstreamTransport(ssl_context=ssl.create_default_context())
        async with httpx2.AsyncClient(transport=untrusting) as http:
            with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.post(url, json=body)
            assert untrusting.pool.open_connections == 0
    assert [r.outcome for r in upstream.requests] == ["completed"]
