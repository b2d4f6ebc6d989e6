"""The Vercel AI SDK's UI Message Stream (``useChat``) over the session manager."""

from gateway.ui.routes import routes

__all__ = ["routes"]
