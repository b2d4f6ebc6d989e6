"""Every parameter the ``openai`` SDK can send is carried or refused by name (#11).

The list comes from the installed SDK's ``chat.completions.create`` signature, so
a parameter a new SDK adds fails here until the gateway decides about it: for
each provider, a request setting it either reaches the fake upstream with it in
the body, or is a 400 ``unsupported_parameter`` naming it -- never a 200 with it
dropped.
"""

from __future__ import annotations

import inspect
from typing import Any

import openai
import pytest
from openai.resources.chat.completions import AsyncCompletions

from gateway.providers.base import PASSTHROUGH_PARAMS
from tests.gateway.http.test_tools import PROVIDERS, TOOLS, setup, weather_question

pytestmark = pytest.mark.anyio

# The SDK's transport knobs, not request parameters.
_TRANSPORT = {"self", "extra_headers", "extra_query", "extra_body", "timeout"}
# Modelled by the gateway and tested where they are carried (test_tools, test_chat...).
_MODELLED = {
    "messages", "model", "stream", "stream_options", "temperature", "top_p", "max_tokens",
    "max_completion_tokens", "stop", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "seed", "user", "logprobs", "top_logprobs", "presence_penalty",
    "frequency_penalty", "n", "reasoning_effort",
}  # fmt: skip
# A value that asks for something (not the default) for each of the others.
SAMPLES: dict[str, Any] = {
    "audio": {"voice": "alloy", "format": "wav"},
    "function_call": {"name": "get_weather"},
    "functions": [{"name": "get_weather", "parameters": {"type": "object"}}],
    "logit_bias": {"50256": -100},
    "metadata": {"team": "search"},
    "modalities": ["text", "audio"],
    "moderation": {"model": "omni-moderation-latest"},
    "prediction": {"type": "content", "content": "It is sunny."},
    "prompt_cache_key": "weather-v1",
    "prompt_cache_options": {"mode": "explicit", "ttl": "30m"},
    "prompt_cache_retention": "24h",
    "safety_identifier": "user-7f3a",
    "service_tier": "flex",
    "store": True,
    "verbosity": "low",
    "web_search_options": {"search_context_size": "low"},
}


def test_every_sdk_parameter_has_a_sample() -> None:
    sdk = set(inspect.signature(AsyncCompletions.create).parameters) - _TRANSPORT
    assert sdk - _MODELLED == set(SAMPLES)
    assert set(PASSTHROUGH_PARAMS) <= set(SAMPLES)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_sdk_parameter_is_carried_or_refused_by_name(provider: str) -> None:
    carried: list[str] = []
    async with setup(provider) as s:
        for name, value in SAMPLES.items():
            sent = len(s.upstream.requests)
            try:
                await s.client.chat.completions.create(
                    model=s.model, messages=weather_question(), **{name: value}
                )
            except openai.BadRequestError as exc:
                assert (exc.code, exc.param) == ("unsupported_parameter", name), name
                assert len(s.upstream.requests) == sent, name  # refused before sending
                continue
            assert s.upstream.last.body[name] == value, name  # as the client sent it
            carried.append(name)
    # OpenAI honours its own request-side parameters; no other provider has them.
    honoured = [p for p in SAMPLES if p in PASSTHROUGH_PARAMS] if provider == "openai" else []
    assert carried == honoured


REFUSED_BY_THE_GATEWAY = [
    ({"extra_body": {"safety_identifer": "typo"}}, "safety_identifer"),  # unknown field
    ({"stream": True, "extra_body": {"safety_identifer": "typo"}}, "safety_identifer"),
    (
        {"stream": True, "stream_options": {"include_obfuscation": True}},
        "stream_options.include_obfuscation",  # the gateway's stream is its own
    ),
]


@pytest.mark.parametrize(("extra", "param"), REFUSED_BY_THE_GATEWAY)
async def test_refused_by_name_before_any_provider(extra: dict[str, Any], param: str) -> None:
    async with setup("openai") as s:
        with pytest.raises(openai.BadRequestError) as caught:
            await s.client.chat.completions.create(
                model=s.model, messages=weather_question(), **extra
            )
        assert s.upstream.requests == []
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", param)


async def test_defaults_of_refused_parameters_are_accepted() -> None:
    async with setup("anthropic") as s:
        await s.client.chat.completions.create(
            model=s.model, messages=weather_question(), modalities=["text"]
        )
        assert "modalities" not in s.upstream.last.body


NAMED_TURNS: list[Any] = [
    {"role": "system", "content": "Be brief.", "name": "house-rules"},
    {"role": "user", "content": "Weather in Paris?", "name": "alice"},
    {"role": "assistant", "content": "Which day?", "name": "concierge"},
    {"role": "user", "content": "Today.", "name": "alice"},
]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_participant_name_is_carried_or_refused_never_dropped(provider: str) -> None:
    async with setup(provider) as s:
        try:
            await s.client.chat.completions.create(model=s.model, messages=NAMED_TURNS)
        except openai.BadRequestError as exc:
            assert provider != "openai"
            assert (exc.code, exc.param) == ("unsupported_parameter", "messages")
            assert "'name'" in exc.message
            assert s.upstream.requests == []
            return
        sent = s.upstream.last.body["messages"]
    assert provider == "openai"
    assert [(m["role"], m.get("name")) for m in sent] == [
        ("system", "house-rules"),
        ("user", "alice"),
        ("assistant", "concierge"),
        ("user", "alice"),
    ]


# OpenAI's defaults, as many clients send them with every request.
DEFAULTS: dict[str, Any] = {
    "n": 1,
    "logprobs": False,
    "top_logprobs": 0,
    "presence_penalty": 0,
    "frequency_penalty": 0.0,
    "parallel_tool_calls": True,
    "store": False,
}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_parameter_at_its_default_asks_for_nothing_and_every_provider_takes_it(
    provider: str,
) -> None:
    async with setup(provider) as s:
        completion = await s.client.chat.completions.create(
            model=s.model, messages=weather_question(), tools=TOOLS, **DEFAULTS
        )
        body = s.upstream.last.body
    assert completion.choices[0].message is not None
    if provider == "openai":  # carried as sent all the same
        assert {name: body[name] for name in DEFAULTS} == DEFAULTS
    # Not a default: still refused where it cannot be honoured.
    async with setup(provider) as s:
        try:
            await s.client.chat.completions.create(
                model=s.model, messages=weather_question(), presence_penalty=0.5
            )
        except openai.BadRequestError as exc:
            assert provider == "anthropic"
            assert exc.param == "presence_penalty"
        else:
            assert provider != "anthropic"
