"""Import every module of one package, proving it works with only its own dependencies.

Run by ``nox -s isolated`` in a virtualenv holding that package alone:
``python tools/import_alone.py IMPORT_NAME``. Exits non-zero if a sibling
package is installed (the check would prove nothing), or if any module fails
to import.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys

SIBLINGS = ["channels", "channels_testing", "channels_redis", "channels_server"]
# What each package declares it depends on, among the siblings.
DECLARED = {
    "channels": [],
    "channels_testing": [],
    "channels_redis": ["channels"],
    "channels_server": [],
}
# Modules that need a sibling or an extra: importing them must fail with an
# ImportError that says what to install (checked separately below).
NEEDS_SIBLING = {
    "channels_server.protocol.fast_http11": "httptools",
    # Django's side of the server (INSTALLED_APPS, runserver): the django extra.
    "channels_server.apps": "django",
    "channels_server.checks": "django",
    "channels_server.management.commands.runserver": "django",
    # HTTP/2 is the http2 extra (h2); --http2 auto leaves it off without it.
    "channels_server.protocol.http2": "h2",
    "channels_server.transport.http2": "h2",
    "channels.testing": "pip install channels-testing",
    "channels_testing.conformance": "pip install channels-testing[conformance]",
    "channels_testing.live": "pip install channels-testing[live]",
    # The pytest plugin is only ever imported by pytest.
    "channels_testing.plugin": "pytest",
}


def main(name: str) -> int:
    undeclared = [
        sibling
        for sibling in SIBLINGS
        if sibling != name
        and sibling not in DECLARED[name]
        and importlib.util.find_spec(sibling) is not None
    ]
    if undeclared:
        print(f"{name}: undeclared siblings are installed too: {undeclared}", file=sys.stderr)
        return 1
    if name == "channels" or "channels" in DECLARED[name]:
        import django
        from django.conf import settings

        settings.configure(INSTALLED_APPS=["channels"])
        django.setup()
    package = importlib.import_module(name)
    imported = [name]
    for info in pkgutil.walk_packages(package.__path__, f"{name}."):
        if info.name in NEEDS_SIBLING:
            continue
        importlib.import_module(info.name)
        imported.append(info.name)
    for module, hint in NEEDS_SIBLING.items():
        if module.split(".")[0] != name:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            if hint not in str(exc):
                print(f"{module}: ImportError without the hint {hint!r}: {exc}", file=sys.stderr)
                return 1
        else:
            print(f"{module} imported although its sibling is absent", file=sys.stderr)
            return 1
    print(f"{name}: {len(imported)} modules import with only the declared dependencies")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
