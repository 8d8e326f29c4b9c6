"""One server process started by the supervisor, seen from the supervisor.

Each worker is a fresh interpreter (``python -m
channels_server.supervisor.worker``), not a fork of the supervisor: it
imports the application itself, so a replaced worker runs the code on disk
now, and it inherits nothing from the supervisor but the listening sockets
and one end of a *control* socket pair. Over that pair the worker says it is
ready (it writes once ``Server.startup()`` has completed), and through it the
worker learns that the supervisor is gone (end of file), which makes it shut
down gracefully instead of serving on as an orphan.

Workers run in a session of their own, so a Ctrl-C in a terminal reaches the
supervisor only; it then asks each worker once, with SIGTERM, to drain (a
second SIGTERM would make a worker skip the waiting, as the single-process
server does).
"""

from __future__ import annotations

import enum
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["HANDOVER_DELAY", "WorkerProcess", "WorkerState", "describe_exit"]

logger = logging.getLogger("channels_server")

#: On SIGTERM a worker stops accepting, then serves on this long before it
#: shuts down: the connections it accepted just before the signal (the other
#: workers share the sockets and take the new ones) send their first request
#: in this time and get it answered, where a shutdown would close them or
#: answer 503 (a SIGHUP replacement under load drops no request this way).
HANDOVER_DELAY = 0.5


class WorkerState(enum.Enum):
    """Where a worker is in its life."""

    #: Started; importing the application and running lifespan startup.
    STARTING = "starting"
    #: Accepting connections (it said so on the control socket).
    READY = "ready"
    #: Asked to shut down (SIGTERM sent); it drains, then exits.
    STOPPING = "stopping"


def describe_exit(returncode: int) -> str:
    """A process's end as a person reads it: "exited with status 1", "killed by SIGKILL"."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with status {returncode}"


class WorkerProcess:
    """A worker process: its ``Popen``, its control socket and its state.

    :param cli_arguments: the command line the supervisor was given; the
        worker parses it the same way, so it builds the same settings.
    :param listening: the supervisor's listening sockets, one per endpoint
        in the order of ``Config.parsed_endpoints``; the worker inherits them
        under the same descriptor numbers.
    :param generation: which replacement round the worker belongs to (SIGHUP
        and reloads start a new one).
    :param handover_delay: how long the worker serves on after SIGTERM
        before it shuts down, having stopped accepting (see worker.py).
    """

    def __init__(
        self,
        cli_arguments: Sequence[str],
        listening: Sequence[socket.socket],
        generation: int,
        handover_delay: float,
    ) -> None:
        self.generation = generation
        self.state = WorkerState.STARTING
        self.started_at = time.monotonic()
        self.stop_sent_at: float | None = None
        self.signals_sent = 0
        supervisor_end, worker_end = socket.socketpair()
        filenos = [sock.fileno() for sock in listening]
        try:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "channels_server.supervisor.worker",
                    "--control-fd",
                    str(worker_end.fileno()),
                    "--listen-fds",
                    ",".join(str(fileno) for fileno in filenos),
                    "--handover-delay",
                    str(handover_delay),
                    "--",
                    *cli_arguments,
                ],
                pass_fds=(worker_end.fileno(), *filenos),
                # Out of the terminal's process group: see the module docstring.
                start_new_session=True,
            )
        except BaseException:
            supervisor_end.close()
            raise
        finally:
            worker_end.close()
        supervisor_end.setblocking(False)
        #: The supervisor's end of the control pair; open until the process is reaped.
        self.control: socket.socket | None = supervisor_end
        self.pid = self.popen.pid

    def receive(self) -> bytes | None:
        """What the worker wrote on the control socket: b"" at end of file, None for nothing yet.

        A worker writes its listening addresses there once it accepts
        connections; the end of file comes when it exits.
        """
        control = self.control
        if control is None:
            return b""
        try:
            return control.recv(4096)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def stop(self) -> None:
        """Ask the worker to drain and exit (SIGTERM); a second call makes it skip the waiting."""
        if self.state is not WorkerState.STOPPING:
            self.state = WorkerState.STOPPING
            self.stop_sent_at = time.monotonic()
        self.signals_sent += 1
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """End the worker now (SIGKILL), when it did not exit in time."""
        self.send_signal(signal.SIGKILL)

    def send_signal(self, signum: int) -> None:
        if self.popen.returncode is None:
            try:
                self.popen.send_signal(signum)
            except ProcessLookupError:  # Exited meanwhile; SIGCHLD tells.
                pass

    def poll(self) -> int | None:
        """The exit status once the process has ended (it is then reaped)."""
        return self.popen.poll()

    def close(self) -> None:
        """Release the control socket (after the process has been reaped)."""
        if self.control is not None:
            self.control.close()
            self.control = None

    def __repr__(self) -> str:
        return f"<WorkerProcess pid={self.pid} {self.state.value} generation={self.generation}>"
