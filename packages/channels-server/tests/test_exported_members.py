"""The public API is exactly ``channels_server.__all__``, sorted."""

from __future__ import annotations

import inspect

import channels_server
from channels_server import errors


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name in dir(channels_server)
        if not name.startswith("_")
        and name != "annotations"  # from __future__
        and not inspect.ismodule(getattr(channels_server, name))
    }
    assert set(channels_server.__all__) - {"__version__"} == public
    assert channels_server.__all__ == sorted(channels_server.__all__)


def test_every_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.ServerError)
    assert issubclass(errors.ClientDisconnected, OSError)
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.ApplicationError, RuntimeError)
