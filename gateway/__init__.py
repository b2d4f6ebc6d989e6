"""chat-gateway: a real-time chat gateway for LLMs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("chat-gateway")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
