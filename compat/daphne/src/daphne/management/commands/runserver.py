"""``manage.py runserver`` with ``"daphne"`` installed: channels-server's command."""

from __future__ import annotations

from channels_server.management.commands.runserver import Command

__all__ = ["Command"]
