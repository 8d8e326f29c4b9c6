"""Every public module states its API in ``__all__``: present, sorted, complete, and real.

"Public module" is any module of ``channels`` or ``channels_testing`` whose
dotted path has no part starting with an underscore. "Complete" means every
public name the module itself binds at the top level (functions, classes,
constants) is listed, and so is every name a package ``__init__`` imports from
its own submodules (that is what it is there to re-export).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

import channels
import channels_testing

# Public by spelling, but never API: a module's logger is reached through
# logging.getLogger(__name__), not imported.
NOT_API = {"logger"}


def public_modules() -> list[str]:
    names = []
    for package in (channels, channels_testing):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return sorted(names)


MODULES = public_modules()


def isort_style_key(name: str) -> tuple[int, list[object]]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then the rest,
    each in natural order (digits compared as numbers)."""
    if name.isupper():
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    natural: list[object] = [
        int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)
    ]
    return kind, natural


def top_level_statements(tree: ast.Module) -> list[ast.stmt]:
    """The module's top-level statements, looking into try/except but not TYPE_CHECKING."""
    statements: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.Try):
            statements.extend(node.body)
            for handler in node.handlers:
                statements.extend(handler.body)
        else:
            statements.append(node)
    return statements


def bound_names(module: types.ModuleType) -> set[str]:
    """Public names the module's own source binds (and, for a package, re-exports)."""
    path = Path(module.__file__ or "")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in top_level_statements(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and is_package and node.level > 0:
            names.update(alias.asname or alias.name for alias in node.names if alias.name != "*")
    return {name for name in names if not name.startswith("_") and name not in NOT_API}


def test_the_walk_finds_the_modules() -> None:
    for expected in (
        "channels",
        "channels.consumer",
        "channels.generic.websocket",
        "channels.layers",
        "channels.routing",
        "channels.testing",
        "channels_testing",
        "channels_testing.websocket",
    ):
        assert expected in MODULES
    assert "channels_testing._scope" not in MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_all_is_present_sorted_complete_and_real(module_name: str) -> None:
    module = importlib.import_module(module_name)
    defined = bound_names(module)
    exported = getattr(module, "__all__", None)
    if exported is None:
        # Only a bare container package (a docstring and nothing else) may go without.
        assert defined == set(), f"{module_name} defines {sorted(defined)} but has no __all__"
        return
    assert isinstance(exported, list), f"{module_name}.__all__ must be a list"
    assert all(isinstance(name, str) for name in exported)
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ has duplicates"
    assert exported == sorted(exported, key=isort_style_key), f"{module_name}.__all__ unsorted"
    missing_attributes = [name for name in exported if not hasattr(module, name)]
    assert missing_attributes == [], f"{module_name}.__all__ lists names it lacks"
    unlisted = sorted(defined - set(exported))
    assert unlisted == [], f"{module_name} defines public names missing from __all__"


def test_star_import_gives_exactly_all() -> None:
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        if not hasattr(module, "__all__"):
            continue
        namespace: dict[str, object] = {}
        exec(f"from {module_name} import *", namespace)
        namespace.pop("__builtins__")
        assert sorted(namespace) == sorted(module.__all__), module_name


def test_sort_key_matches_ruffs_order() -> None:
    names = ["get_x", "__version__", "Zeta", "ALPHA", "Alpha", "MAX_2", "MAX_10", "a10", "a9"]
    assert sorted(names, key=isort_style_key) == [
        "ALPHA",
        "MAX_2",
        "MAX_10",
        "Alpha",
        "Zeta",
        "__version__",
        "a9",
        "a10",
        "get_x",
    ]
