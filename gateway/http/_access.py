"""Client authentication for the plain HTTP API (``/api/v1/*``)."""

from __future__ import annotations

from starlette.requests import Request

from gateway.auth import Principal, bearer_token
from gateway.services import services_of


def require_principal(request: Request) -> Principal:
    """The caller; raises Unauthorized (401, OpenAI error shape) when client keys are set."""
    return services_of(request).auth.authenticate(bearer_token(request.headers))
