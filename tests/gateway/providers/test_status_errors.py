"""An upstream HTTP error status becomes the gateway error the router retries (or not) on.

One mapping (``gateway/providers/_errors.py``) behind both SDK adapters, so one
test over both, through the real SDKs against their fakes on real uvicorn.
"""

from __future__ import annotations

import pytest

from gateway.errors import (
    UpstreamBadRequest,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from gateway.providers.base import Provider
from tests.fakes import Scenario
from tests.gateway.providers.test_abort import FAKES, _request

pytestmark = pytest.mark.anyio

_COMMON = [
    (400, UpstreamBadRequest, False),
    (404, UpstreamModelNotFound, False),  # the chat endpoints' 404: the model
    (429, UpstreamRateLimited, True),
    (500, UpstreamError, True),
]
_CASES = [
    *((name, *case) for name in ("anthropic", "openai") for case in _COMMON),
    ("openai", 503, UpstreamUnavailable, True),
    ("anthropic", 529, UpstreamUnavailable, True),  # Anthropic's "overloaded"
]


@pytest.mark.parametrize(("name", "status", "error_class", "retryable"), _CASES)
async def test_error_statuses_map_to_gateway_errors(
    name: str, status: int, error_class: type[UpstreamError], retryable: bool
) -> None:
    async with FAKES[name]() as (upstream, provider):
        upstream.queue(Scenario(status=status))
        p: Provider = provider
        with pytest.raises(UpstreamError) as caught:
            async with p.stream(_request(name)) as events:
                async for _ in events:
                    pass
    assert type(caught.value) is error_class
    assert caught.value.retryable is retryable
    assert caught.value.upstream_status == status
    assert f"fake upstream error {status}" in caught.value.message
