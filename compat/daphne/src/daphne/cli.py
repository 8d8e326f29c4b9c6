"""The ``daphne`` command: channels-server's command line, which takes Daphne's flags."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from channels_server import cli as _server_cli

__all__ = ["CommandLineInterface", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run channels-server with *argv* (default: the command line)."""
    return _server_cli.main(argv)


class CommandLineInterface:
    """Daphne's entry-point class, for scripts that start the server through it."""

    @classmethod
    def entrypoint(cls) -> None:
        """Run with the command line's arguments and exit with the server's status."""
        sys.exit(cls().run(sys.argv[1:]))

    def run(self, args: Sequence[str]) -> int:
        """Run channels-server with *args* (Daphne's flags)."""
        return main(args)
