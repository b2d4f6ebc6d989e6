"""schemathesis against the HTTP API's own ``/openapi.json``, over a real gateway.

The gateway (demo provider only, no keys) runs on uvicorn in a portal thread; the
generated cases go to it over loopback. Checks: no 5xx, every status code is a
documented one, and a documented content type is the one sent. Few examples per
operation, so the suite stays fast; ``database=None``: no example store on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from tests.gateway.ws._support import gateway

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(gateway()) as gw,
    ):
        yield gw.base


def test_every_operation_conforms_to_the_published_document(base_url: str) -> None:
    document = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document must load: {result}"
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, timeout=10)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # collect every operation's failure, then report all
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 5, "the document lists the HTTP routes"
    assert not failures, "\n\n".join(failures)
