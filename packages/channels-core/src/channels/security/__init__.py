"""Security helpers: :mod:`channels.security.websocket` checks where WebSockets come from."""

from __future__ import annotations

__all__: list[str] = []
