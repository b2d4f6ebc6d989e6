"""Session manager: sessions, responses, replay buffers. Never imports ``gateway``."""
