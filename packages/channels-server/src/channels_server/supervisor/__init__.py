"""Several server processes on the same sockets (``--workers``), and ``--reload``.

Modules:

* ``supervisor``: the :class:`~.supervisor.Supervisor` loop (binding,
  starting, replacing and stopping workers; signals);
* ``process``: one worker process as the supervisor sees it;
* ``worker``: the worker's side (``python -m channels_server.supervisor.worker``);
* ``watch``: the two file watchers behind ``--reload`` (``watchfiles`` or polling).

Without ``--workers`` or ``--reload`` none of this runs: the server is one
process, as before.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TextIO

from ..config import Config
from ..errors import ConfigurationError
from .supervisor import Supervisor
from .watch import FileFilter, make_watcher

__all__ = ["Supervisor", "check_arguments", "supervise"]


def check_arguments(arguments: argparse.Namespace) -> bool:
    """Validate the workers and reload flags; whether a supervisor is to run.

    Raises :class:`~channels_server.errors.ConfigurationError` naming the flag.
    """
    workers: int | None = arguments.workers
    if workers is not None and workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, not {workers}")
    if arguments.reload:
        if workers is not None and workers > 1:
            raise ConfigurationError(
                "--reload runs one server process, restarted when files change; "
                "it cannot be combined with --workers"
            )
        if arguments.reload_delay < 0:
            raise ConfigurationError(f"--reload-delay must be >= 0, not {arguments.reload_delay}")
        for folder in arguments.reload_dirs or ():
            if not os.path.isdir(folder):
                raise ConfigurationError(f"--reload-dir {folder!r} is not a directory")
        return True
    given = [
        flag
        for flag, value in (
            ("--reload-dir", arguments.reload_dirs),
            ("--reload-include", arguments.reload_includes),
            ("--reload-exclude", arguments.reload_excludes),
        )
        if value
    ]
    if given:
        verb = "needs" if len(given) == 1 else "need"
        raise ConfigurationError(f"{' and '.join(given)} {verb} --reload")
    return workers is not None


def supervise(
    arguments: argparse.Namespace,
    config: Config,
    cli_arguments: Sequence[str],
    *,
    announce: TextIO | None = None,
) -> int:
    """Run the supervisor for checked *arguments*; the exit status."""
    if arguments.reload:
        file_filter = FileFilter.from_options(
            arguments.reload_dirs or ["."],
            arguments.reload_includes or (),
            arguments.reload_excludes or (),
        )
        watcher = make_watcher(file_filter, arguments.reload_delay)
        return Supervisor(
            cli_arguments, config, workers=1, watcher=watcher, announce=announce
        ).run()
    return Supervisor(cli_arguments, config, workers=arguments.workers, announce=announce).run()
