"""The ``httpx2.AsyncClient`` every provider adapter sends through."""

from __future__ import annotations

import urllib.request
from typing import Any

import httpx2

from gateway.upstream.pool import Limits
from gateway.upstream.transport import UpstreamTransport

_PROXY_SCHEMES = ("http", "https", "all")


def async_client(
    *, timeout: httpx2.Timeout, limits: Limits | None = None, **kwargs: Any
) -> httpx2.AsyncClient:
    """A client on :class:`UpstreamTransport`, with the SDKs' own defaults otherwise.

    Redirects are followed (as the SDKs' default client does). When the
    environment names an HTTP proxy the transport cannot honour it, so the
    client is left on httpx2's default transport: slower, but through the proxy.
    """
    kwargs.setdefault("follow_redirects", True)
    if _environment_proxy():
        return httpx2.AsyncClient(timeout=timeout, **kwargs)
    transport = UpstreamTransport(ssl_context=httpx2.create_ssl_context(), limits=limits)
    return httpx2.AsyncClient(timeout=timeout, transport=transport, **kwargs)


def _environment_proxy() -> bool:
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in _PROXY_SCHEMES)
