"""A worker process: ``python -m channels_server.supervisor.worker``.

The supervisor starts it as::

    python -m channels_server.supervisor.worker --control-fd 7 --listen-fds 3,4 \\
        --handover-delay 0.5 -- <command line>

where ``<command line>`` is the supervisor's own. The worker parses it as
the command line does, so it builds the same settings, then serves the
listening sockets it inherited (descriptors 3 and 4 above, one per endpoint
in order) as ``fd:`` endpoints that keep each original endpoint's TLS
settings: it loads the certificates itself, and a SIGHUP replace loads them
again. Once ``Server.startup()`` has completed it writes its listening
addresses to the control socket (the supervisor takes that as "ready"), and
when the supervisor goes away (end of file on the control socket) it shuts
down gracefully, as on SIGTERM. On SIGTERM it first stops accepting and
serves on for the handover delay (``process.HANDOVER_DELAY``), then drains.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence

from ..config import Config
from .process import HANDOVER_DELAY

__all__ = ["inherited_config", "main"]


def inherited_config(config: Config, filenos: Sequence[int]) -> Config:
    """*config* serving inherited descriptors *filenos* (one per endpoint, in order).

    Each endpoint becomes an ``fd:`` endpoint that keeps the original's TLS
    settings and backlog. ``parsed_endpoints`` is set directly because an
    ``fd:`` description has no place for an ``ssl:`` endpoint's TLS options.
    """
    if len(filenos) != len(config.parsed_endpoints):
        raise ValueError(f"{len(filenos)} descriptors for {len(config.parsed_endpoints)} endpoints")
    endpoints = tuple(
        dataclasses.replace(
            endpoint, kind="fd", fileno=fileno, host=None, port=None, path=None, mode=None
        )
        for endpoint, fileno in zip(config.parsed_endpoints, filenos, strict=True)
    )
    worker = dataclasses.replace(
        config, endpoints=tuple(f"fd:fileno={fileno}" for fileno in filenos)
    )
    object.__setattr__(worker, "parsed_endpoints", endpoints)
    return worker


def _watch_supervisor(control: socket.socket) -> None:
    """Block until the supervisor's end closes, then shut down as on SIGTERM."""
    try:
        while control.recv(4096):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def _parse(argv: Sequence[str]) -> tuple[int, list[int], float, list[str]]:
    arguments = list(argv)
    try:
        separator = arguments.index("--")
        options = dict(zip(arguments[:separator:2], arguments[1:separator:2], strict=True))
        control_fd = int(options["--control-fd"])
        listen_fds = [int(item) for item in options["--listen-fds"].split(",") if item]
        handover_delay = float(options.get("--handover-delay", HANDOVER_DELAY))
    except (ValueError, KeyError):
        raise SystemExit(
            "usage: python -m channels_server.supervisor.worker --control-fd N "
            "--listen-fds A,B [--handover-delay SECONDS] -- <channels-server command line> "
            "(started by the supervisor)"
        ) from None
    return control_fd, listen_fds, handover_delay, arguments[separator + 1 :]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve as one worker of a supervisor; returns the exit status."""
    # Imported here: cli imports the supervisor package, which imports this module.
    from .. import cli
    from ..logging import configure_logging

    control_fd, listen_fds, handover_delay, cli_arguments = _parse(
        sys.argv[1:] if argv is None else argv
    )
    control = socket.socket(fileno=control_fd)
    parser = cli.build_parser()
    arguments = parser.parse_args(cli_arguments)
    config = inherited_config(cli.config_from_arguments(arguments), listen_fds)
    configure_logging(arguments.verbosity, cli.log_format(arguments, supervised=True))
    threading.Thread(
        target=_watch_supervisor, args=(control,), name="supervisor-lifeline", daemon=True
    ).start()
    with control.makefile("w", encoding="utf-8") as ready:
        return cli.serve(arguments, config, announce=ready, handover_delay=handover_delay)


if __name__ == "__main__":
    sys.exit(main())
