"""What a provider can honour, checked before a request is sent (no silent drops).

Each adapter declares the options it carries as a :class:`Support`; its
``check`` refuses the first option it does not with
:class:`~gateway.errors.UnsupportedParameter` naming it. The README's support
matrix is these declarations, written out.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import UnsupportedParameter
from gateway.providers.base import ChatRequest, ImagePart


@dataclass(frozen=True, slots=True)
class Support:
    provider: str
    options: frozenset[str]  # ChatOptions wire names honoured, streamed or not
    images: bool = True
    remote_images: bool = True  # https: image URLs (not only data: URLs)
    participant_names: bool = False  # ``name`` on a system, user or assistant message

    def check(self, request: ChatRequest, *, streamed: bool) -> None:
        for name in request.options.given():
            if name in self.options:
                continue
            raise UnsupportedParameter(f"{self.provider} does not support '{name}'", param=name)
        if not self.participant_names:
            self._check_no_names(request)
        if self.images and self.remote_images:
            return
        # ``param`` names the field only: an agent's instructions may have shifted indexes.
        for message in request.messages:
            if isinstance(message.content, str):
                continue
            for part in message.content:
                if not isinstance(part, ImagePart):
                    continue
                if not self.images:
                    raise UnsupportedParameter(
                        f"{self.provider} does not support image inputs",
                        param="messages",
                    )
                if part.inline is None:
                    raise UnsupportedParameter(
                        f"{self.provider} takes images only as base64 data: URLs, "
                        "not as links to fetch",
                        param="messages",
                    )

    def _check_no_names(self, request: ChatRequest) -> None:
        for message in request.messages:
            if message.name is not None and message.role != "tool":
                raise UnsupportedParameter(
                    f"{self.provider} does not support a 'name' on {message.role} messages",
                    param="messages",
                )


def refuse(provider: str, param: str, why: str) -> UnsupportedParameter:
    return UnsupportedParameter(f"{provider} {why}", param=param)
