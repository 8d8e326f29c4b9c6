"""``python -m channels_server``: the same as the ``channels-server`` command."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
