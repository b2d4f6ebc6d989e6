"""The ``httpx2.AsyncClient`` every provider adapter sends through."""

from __future__ import annotations

import urllib.request
from typing import Any

import httpx2

from gateway.upstream.pool import PoolLimits
from gateway.upstream.transport import UpstreamTransport

_PROXY_SCHEMES = ("http", "https", "all")
# Headers httpx2 adds or derives itself; a request that already names one takes
# httpx2's own path, which knows every precedence rule between them.
_DERIVED_HEADERS = frozenset((b"host", b"content-length", b"transfer-encoding"))
# The distinct URLs a gateway sends to are a handful per provider; the bound only
# keeps a misconfiguration from growing the cache without limit.
_MAX_CACHED_URLS = 64


def async_client(
    *,
    timeout: httpx2.Timeout,
    limits: PoolLimits | None = None,
    own_transport: bool = True,
    **kwargs: Any,
) -> httpx2.AsyncClient:
    """A client on :class:`UpstreamTransport`, with the SDKs' own defaults otherwise.

    Redirects are followed (as the SDKs' default client does). When the
    environment names an HTTP proxy the transport cannot honour it, so the
    client is left on httpx2's default transport: slower, but through the proxy
    (and ``NO_PROXY``), as it is with ``own_transport=False``.
    """
    kwargs.setdefault("follow_redirects", True)
    if not own_transport or _environment_proxy():
        return LeanBuildClient(timeout=timeout, **kwargs)
    transport = UpstreamTransport(ssl_context=httpx2.create_ssl_context(), limits=limits)
    return LeanBuildClient(timeout=timeout, transport=transport, **kwargs)


class LeanBuildClient(httpx2.AsyncClient):
    """``httpx2.AsyncClient`` whose ``build_request`` does the SDKs' call in one pass.

    An SDK hands over a finished request: the full URL as a string, every header,
    the body as bytes. httpx2's general ``build_request`` then parses that URL
    twice, merges the client's default headers by rescanning the list once per
    header, and normalises the merged headers twice more: about a third of the
    CPU an SDK spends starting a request, which sits between a user's request
    and the upstream seeing it. This builds the same ``Request`` (same URL, same
    headers in the same order, same body and timeout) with each step done once
    and the parsed URL cached (bench: instructions per streamed request
    3,258,797 -> 2,862,019, -12.2 %, ``bench.request_cost --instructions``;
    bench/README.md optimisation log). Every other kind of call (form data, files, JSON,
    query parameters, cookies in the call or the jar, streamed bodies, a header
    httpx2 would derive)
    goes to httpx2's own ``build_request`` unchanged.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._urls: dict[str, tuple[httpx2.URL, bytes]] = {}
        self._urls_base = self.base_url

    def build_request(
        self,
        method: str,
        url: httpx2.URL | str,
        *,
        content: Any = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: Any = None,
        headers: Any = None,
        cookies: Any = None,
        timeout: Any = httpx2.USE_CLIENT_DEFAULT,
        extensions: Any = None,
    ) -> httpx2.Request:
        if (
            isinstance(url, str)
            and isinstance(content, bytes)
            and content
            and data is None
            and files is None
            and json is None
            and params is None
            and cookies is None
            and extensions is None
            and not self.params
            and not self.cookies  # the jar's Cookie header goes where httpx2 puts it
        ):
            merged = self._merged_headers(headers)
            if merged is not None:
                return self._lean_request(method, url, content, merged, timeout)
        return super().build_request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            timeout=timeout,
            extensions=extensions,
        )

    def _lean_request(
        self,
        method: str,
        url: str,
        content: bytes,
        headers: list[tuple[bytes, bytes]],
        timeout: Any,
    ) -> httpx2.Request:
        target, netloc = self._target(url)
        chosen = self.timeout if timeout is httpx2.USE_CLIENT_DEFAULT else timeout
        request = httpx2.Request(
            method,
            target,
            # Where httpx2 puts them: Host first, the body's length last.
            headers=[(b"Host", netloc), *headers, (b"Content-Length", b"%d" % len(content))],
            stream=httpx2.ByteStream(content),
            extensions={"timeout": httpx2.Timeout(chosen).as_dict()},
        )
        request.read()  # as httpx2 does for a body given whole: ``request.content`` works
        return request

    def _merged_headers(self, headers: Any) -> list[tuple[bytes, bytes]] | None:
        """The client's defaults overridden by ``headers``, as httpx2 merges them.

        httpx2 removes each given name from the defaults with one scan of the list
        per name; one set of names and one filter give the same list. ``None``
        when a header httpx2 derives itself is already there.
        """
        given = httpx2.Headers(headers).raw
        names = {name.lower() for name, _ in given}
        kept = [(name, value) for name, value in self.headers.raw if name.lower() not in names]
        if not _DERIVED_HEADERS.isdisjoint(names) or any(
            name.lower() in _DERIVED_HEADERS for name, _ in kept
        ):
            return None
        return kept + given

    def _target(self, url: str) -> tuple[httpx2.URL, bytes]:
        if self._urls_base is not self.base_url:  # re-pointed: relative URLs mean others now
            self._urls.clear()
            self._urls_base = self.base_url
        cached = self._urls.get(url)
        if cached is None:
            merged = _joined(self.base_url, url)
            if len(self._urls) >= _MAX_CACHED_URLS:
                self._urls.clear()
            cached = self._urls[url] = (merged, merged.netloc)
        return cached


def _joined(base: httpx2.URL, url: str) -> httpx2.URL:
    """``url`` against the client's ``base_url``, as httpx2 joins them."""
    parsed = httpx2.URL(url)
    if not parsed.is_relative_url:
        return parsed
    return base.copy_with(raw_path=base.raw_path + parsed.raw_path.lstrip(b"/"))


def _environment_proxy() -> bool:
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in _PROXY_SCHEMES)
