"""Fail when a package of ours is installed that the arguments do not name.

Run by ``nox -s tests`` before a package's tests, with the packages its
declarations pull in: ``python tools/only_declared.py channels-core
channels-testing``. A passing run then proves the package's tests need
nothing of ours beyond what it declares.
"""

from __future__ import annotations

import sys
from importlib import metadata

OURS = {"channels-core", "channels-testing", "channels-layers-redis", "channels-server"}


def main(declared: list[str]) -> int:
    installed = {dist.metadata["Name"] for dist in metadata.distributions()} & OURS
    undeclared = sorted(installed - set(declared))
    if undeclared:
        print(f"installed but not declared: {', '.join(undeclared)}", file=sys.stderr)
        return 1
    print(f"ours installed, all declared: {', '.join(sorted(installed))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
