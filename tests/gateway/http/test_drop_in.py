"""A drop-in OpenAI endpoint: the caller's own messages reach the upstream unchanged.

The default agent applies to the WebSocket only (``ws_default_agent``); the HTTP API
adds an agent's instructions only when the request names one or
``http_default_agent`` is configured.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.http.test_chat import with_openai_fake

pytestmark = pytest.mark.anyio

MESSAGES: list[Any] = [
    {"role": "system", "content": "You answer in French."},
    {"role": "user", "content": "hello"},
]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_plain_request_sends_exactly_the_callers_messages(stream: bool) -> None:
    async with with_openai_fake() as (gw, upstream):
        client = gw.openai()
        if stream:
            chunks = await client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=MESSAGES, stream=True
            )
            _ = [chunk async for chunk in chunks]
        else:
            await client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert upstream.last.body["messages"] == MESSAGES
    assert upstream.last.body["model"] == "gpt-4o-mini"


async def test_a_request_naming_an_agent_gets_its_instructions() -> None:
    async with with_openai_fake() as (gw, upstream):
        await gw.openai().chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=MESSAGES[1:],
            extra_body={"agent": "assistant"},
        )
    sent = upstream.last.body["messages"]
    assert sent[0]["role"] == "system" and "service desk" in sent[0]["content"]
    assert sent[1:] == MESSAGES[1:]


async def test_a_configured_http_default_agent_applies() -> None:
    async with with_openai_fake(http_default_agent="assistant") as (gw, upstream):
        await gw.openai().chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES[1:])
    assert upstream.last.body["messages"][0]["role"] == "system"
