"""What each chat-completions option becomes in the provider's own request (#11).

Through the official ``openai`` SDK against the gateway, asserting on the body the
fake upstream recorded: Anthropic's translations (tool choice, parallel calls,
thinking budget, user) and OpenAI's pass-through scalars, unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.providers.anthropic import DEFAULT_MAX_TOKENS
from tests.gateway.http.test_tools import TOOLS, setup, weather_question

pytestmark = pytest.mark.anyio

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}
NAMED = {"type": "function", "function": {"name": "get_time"}}

ANTHROPIC: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("required", {"tools": TOOLS, "tool_choice": "required"}, {"tool_choice": {"type": "any"}}),
    ("none", {"tools": TOOLS, "tool_choice": "none"}, {"tool_choice": {"type": "none"}}),
    (
        "named",
        {"tools": TOOLS, "tool_choice": NAMED},
        {"tool_choice": {"type": "tool", "name": "get_time"}},
    ),
    (
        "no parallel calls",
        {"tools": TOOLS, "parallel_tool_calls": False},
        {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
    ),
    (
        "named, no parallel calls",
        {"tools": TOOLS, "tool_choice": NAMED, "parallel_tool_calls": False},
        {"tool_choice": {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True}},
    ),
    (
        "reasoning low",
        {"reasoning_effort": "low", "max_tokens": 200},
        {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 200 + 1024},
    ),
    (
        "reasoning high, default max_tokens",
        {"reasoning_effort": "high"},
        {
            "thinking": {"type": "enabled", "budget_tokens": 16384},
            "max_tokens": DEFAULT_MAX_TOKENS + 16384,
        },
    ),
    ("user", {"user": "user-42"}, {"metadata": {"user_id": "user-42"}}),
]

_SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True},
}
OPENAI: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (name, kwargs, kwargs)
    for name, kwargs in [
        ("user", {"user": "user-42"}),
        ("presence_penalty", {"presence_penalty": 0.5}),
        ("frequency_penalty", {"frequency_penalty": -0.25}),
        ("reasoning_effort", {"reasoning_effort": "low"}),
        ("parallel_tool_calls", {"tools": TOOLS, "parallel_tool_calls": False}),
        ("json_schema strict", {"response_format": _SCHEMA_FORMAT}),
    ]
]
CASES = [("anthropic", *case) for case in ANTHROPIC] + [("openai", *case) for case in OPENAI]


@pytest.mark.parametrize(
    ("provider", "kwargs", "expected"),
    [(c[0], c[2], c[3]) for c in CASES],
    ids=[f"{c[0]}: {c[1]}" for c in CASES],
)
async def test_an_option_reaches_the_provider_as_its_own_field(
    provider: str, kwargs: dict[str, Any], expected: dict[str, Any]
) -> None:
    async with setup(provider) as s:
        for stream in (False, True):
            sent = dict(kwargs, stream=stream)
            reply = await s.client.chat.completions.create(
                model=s.model, messages=weather_question(), **sent
            )
            if stream:
                async for _ in reply:  # type: ignore[union-attr]
                    pass
            body = s.upstream.last.body
            for field, value in expected.items():
                assert body[field] == value, (field, stream)
