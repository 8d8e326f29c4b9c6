"""Load a test suite's ``_support`` folder as a package of its own (private).

The packages' test suites run with ``--import-mode=importlib``, which puts
no test folder on ``sys.path``, so their ``conftest.py`` cannot import the
helpers in ``tests/_support/`` by name. :func:`support_loader` loads that
folder by path, once, under a name the suite chooses (distinct per suite, so
two suites' ``_support`` packages never collide in ``sys.modules``).

Private to the ``channels-*`` test suites; not part of the testing API.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

__all__ = ["support_loader"]


def support_loader(conftest: str, package: str) -> Callable[[str], ModuleType]:
    """A function giving ``_support.<module>`` of the folder beside *conftest*.

    :param conftest: the ``__file__`` of the suite's ``conftest.py``.
    :param package: the name the folder is imported under.
    """
    folder = Path(conftest).with_name("_support")

    def load(module: str) -> ModuleType:
        if package not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                package, folder / "__init__.py", submodule_search_locations=[str(folder)]
            )
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load the test support package at {folder}")
            sys.modules[package] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(sys.modules[package])
        return importlib.import_module(f"{package}.{module}")

    return load
