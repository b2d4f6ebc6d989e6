"""``endpoint`` joins a path to an SDK client's base URL exactly as the SDK would."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from gateway.providers._sdk import endpoint


def _openai(base_url: str) -> Any:
    return openai.AsyncOpenAI(api_key="sk-test", base_url=base_url)


def _anthropic(base_url: str) -> Any:
    return anthropic.AsyncAnthropic(api_key="sk-ant", base_url=base_url)


@pytest.mark.parametrize("make", [_openai, _anthropic])
@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.example.com/v1",
        "https://api.example.com/v1/",
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080/proxy/openai/v1",
        "https://api.example.com/v1?api-version=2024-10-01",
    ],
)
@pytest.mark.parametrize("path", ["/chat/completions", "v1/messages"])
def test_the_url_is_the_one_the_sdk_builds(make: Any, base_url: str, path: str) -> None:
    client = make(base_url)
    # The SDK's own join, which every request would otherwise repeat.
    assert endpoint(client, path) == str(client._prepare_url(path))
    # And given the absolute URL, the SDK sends to that very URL.
    assert str(client._prepare_url(endpoint(client, path))) == endpoint(client, path)
