"""Streamed ``n`` > 1 and ``logprobs`` over SSE, through the official ``openai`` SDK (OpenAI fake).

The fake streams the choices interleaved, the further ones shorter and ending
with ``length`` while the first goes on, each content chunk with its logprobs
(:func:`tests.fakes.openai.choice_tokens`, :func:`~tests.fakes.openai.token_logprobs`
say exactly what it sent). The SDK's own accumulation (``chat.completions.stream``)
must come out with each choice as the fake sent it, and the request body must
have carried ``n``, ``logprobs`` and ``top_logprobs`` to the provider. Anthropic,
Ollama, the WebSocket protocol and the UI chat refuse both by name.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes import Scenario
from tests.fakes.openai import choice_tokens, token_logprobs
from tests.gateway.http._support import gateway as http_gateway
from tests.gateway.http.test_tools import setup, weather_question
from tests.gateway.ws._support import gateway as ws_gateway

pytestmark = pytest.mark.anyio

SCENARIO = Scenario(tokens=["Sun", "ny", " and", " warm", "."], usage=(9, 5))


def _sent_logprobs(scenario: Scenario, choice: int, top: int) -> list[dict[str, Any]]:
    tokens = choice_tokens(scenario, choice)
    return [
        entry
        for position, token in enumerate(tokens)
        for entry in token_logprobs(token, position, choice, top)["content"]
    ]


async def test_streamed_n_choices_with_logprobs_accumulate_per_choice() -> None:
    async with setup("openai") as s:
        s.upstream.queue(SCENARIO)
        async with s.client.chat.completions.stream(
            model=s.model,
            messages=weather_question(),
            n=3,
            logprobs=True,
            top_logprobs=2,
            stream_options={"include_usage": True},
        ) as stream:
            chunks = [event.chunk async for event in stream if event.type == "chunk"]
            # The SDK's accumulation (its ``get_final_completion`` refuses to parse an
            # answer with a ``length`` choice; the snapshot is what it accumulated).
            final = stream.current_completion_snapshot
        body = s.upstream.last.body
    assert (body["n"], body["logprobs"], body["top_logprobs"]) == (3, True, 2)
    assert body["stream"] is True
    assert [choice.index for choice in final.choices] == [0, 1, 2]
    for choice in final.choices:
        number = choice.index
        assert choice.message.role == "assistant"
        assert choice.message.content == "".join(choice_tokens(SCENARIO, number))
        assert choice.finish_reason == ("stop" if number == 0 else "length")
        assert choice.logprobs is not None and choice.logprobs.content is not None
        got = [entry.model_dump() for entry in choice.logprobs.content]
        assert got == _sent_logprobs(SCENARIO, number, 2)
        assert all(len(entry.top_logprobs) == 2 for entry in choice.logprobs.content)
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (9, 5)
    # Every chunk is one choice's, as OpenAI streams them; each choice's finish comes
    # where that choice ended (choice 2 first: it is the shortest), before the usage.
    finishes = [
        (chunk.choices[0].index, chunk.choices[0].finish_reason)
        for chunk in chunks
        if chunk.choices and chunk.choices[0].finish_reason
    ]
    assert finishes == [(2, "length"), (1, "length"), (0, "stop")]
    assert all(len(chunk.choices) <= 1 for chunk in chunks)
    last_text_of_2 = max(i for i, c in enumerate(chunks) if c.choices and c.choices[0].index == 2)
    first_finish = next(i for i, c in enumerate(chunks) if c.choices and c.choices[0].finish_reason)
    assert first_finish <= last_text_of_2  # choice 2's finish is its own last chunk
    later_text_of_0 = [
        c
        for c in chunks[first_finish:]
        if c.choices and c.choices[0].index == 0 and c.choices[0].delta.content
    ]
    assert later_text_of_0  # choice 0 went on after choice 2 had finished
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


async def test_streamed_logprobs_of_one_choice_ride_with_each_text_chunk() -> None:
    async with setup("openai") as s:
        s.upstream.queue(SCENARIO)
        stream = await s.client.chat.completions.create(
            model=s.model, messages=weather_question(), logprobs=True, stream=True
        )
        chunks = [chunk async for chunk in stream]
        body = s.upstream.last.body
    assert body["logprobs"] is True and "n" not in body and "top_logprobs" not in body
    texts = [c.choices[0] for c in chunks if c.choices and c.choices[0].delta.content]
    assert [c.delta.content for c in texts] == SCENARIO.tokens
    for position, choice in enumerate(texts):
        assert choice.index == 0
        assert choice.logprobs is not None and choice.logprobs.content is not None
        sent = token_logprobs(SCENARIO.tokens[position], position, 0, 0)["content"]
        assert [entry.model_dump() for entry in choice.logprobs.content] == sent
    role = chunks[0].choices[0]
    assert role.delta.role == "assistant" and role.logprobs is None
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_streamed_n_with_the_default_shape_still_says_one_role_per_choice() -> None:
    async with setup("openai") as s:
        s.upstream.queue(Scenario(tokens=["a", "b"]))
        stream = await s.client.chat.completions.create(
            model=s.model, messages=weather_question(), n=2, stream=True
        )
        chunks = [chunk async for chunk in stream]
    roles = [c.choices[0].index for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles == [0, 1]
    text: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            text[choice.index] = text.get(choice.index, "") + (choice.delta.content or "")
            assert choice.logprobs is None
    assert text == {0: "ab", 1: "a1"}


@pytest.mark.parametrize("provider", ["anthropic", "ollama"])
@pytest.mark.parametrize(
    ("extra", "param"),
    [({"n": 2}, "n"), ({"logprobs": True, "top_logprobs": 2}, "logprobs")],
)
async def test_streamed_n_and_logprobs_stay_refused_elsewhere(
    provider: str, extra: dict[str, Any], param: str
) -> None:
    async with setup(provider) as s:
        with pytest.raises(openai.BadRequestError) as caught:
            await s.client.chat.completions.create(
                model=s.model, messages=weather_question(), stream=True, **extra
            )
        assert s.upstream.requests == []
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"top_logprobs": 2}, "top_logprobs")],
)
async def test_the_websocket_refuses_n_and_logprobs_by_name(
    extra: dict[str, Any], param: str
) -> None:
    async with ws_gateway() as gw:
        client = await gw.open()
        rid = await client.create("hi", event_id="e-1", **extra)
        error = (await client.next("error"))["error"]
        # The socket goes on: a later create is answered.
        answer = await client.response(await client.create("again"))
        await client.aclose()
    assert (error["code"], error["param"]) == ("unsupported_parameter", param)
    assert (error["request_id"], error["event_id"]) == (rid, "e-1")
    assert answer.done["status"] == "completed"


@pytest.mark.parametrize("param", ["n", "logprobs", "top_logprobs"])
async def test_the_ui_chat_refuses_n_and_logprobs_by_name(param: str) -> None:
    value: Any = True if param == "logprobs" else 2
    body = {
        "id": "chat-1",
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
        "model": "demo/lorem",
        param: value,
    }
    async with http_gateway() as gw, gw.http() as client:
        refused = await client.post("/api/v1/ui/chat", json=body)
        del body[param]
        async with client.stream("POST", "/api/v1/ui/chat", json=body) as accepted:
            status = accepted.status_code
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("unsupported_parameter", param)
    assert status == 200  # the same body without it is answered
