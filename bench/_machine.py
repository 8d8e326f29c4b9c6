"""What every benchmark records about the machine it ran on (for its ``--json``)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def describe() -> dict[str, Any]:
    """System, CPU, CPU count, host name and Python version."""
    return {
        "system": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "hostname": platform.node(),
        "python": sys.version.split()[0],
    }
