"""The echo application the Autobahn|Testsuite fuzzing client talks to: the
tests' own (``_support/apps.py``), loaded from this folder's parent."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _support.apps import echo as application

__all__ = ["application"]
