"""The supervisor: binds the listening sockets once and keeps worker processes serving them.

::

    start       bind every endpoint ─► start N workers ─► all ready: announce (--port 0)
    worker dies replace it (logged with its exit status or signal); one that
                fails before it is ready is retried with a back-off, and the
                supervisor gives up (status 1) after MAX_STARTUP_FAILURES in a
                row, or at the first one while the first workers start
    SIGHUP      start N new workers ─► all ready ─► SIGTERM the old ones (they
                drain); the listening sockets stay open throughout, so no
                connection is refused. A new worker failing to start abandons
                the replacement and the old workers keep serving
    SIGTERM     SIGTERM every worker (each drains as the single-process server
    SIGINT      does) and close the supervisor's sockets ─► all exited ─► remove
                unix socket files ─► exit 0; a second signal is passed on, and
                makes the workers skip the waiting
    --reload    one worker; a change to a watched file stops it (SIGTERM, a
                short grace, then SIGTERM again) and starts a new one; one that
                fails to start (a syntax error) is logged and the supervisor
                waits for the next change

The supervisor never imports the application: every worker does, so each
new worker runs the code on disk when it starts. Everything happens in one
thread around :mod:`selectors`: signals arrive through
:func:`signal.set_wakeup_fd`, readiness on each worker's control socket,
file changes through a pipe written by the watcher's thread.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import queue
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TextIO

from ..config import Config, TLSSettings
from ..errors import ConfigurationError
from ..protocol.versions import http2_enabled
from ..transport.tcp import bind, describe_socket
from ..transport.tls import server_context
from .process import HANDOVER_DELAY, WorkerProcess, WorkerState, describe_exit
from .watch import Watcher

__all__ = ["MAX_STARTUP_FAILURES", "RELOAD_GRACE", "Supervisor"]

logger = logging.getLogger("channels_server")

#: Workers in a row that may fail before they are ready before the supervisor gives up.
MAX_STARTUP_FAILURES = 5
#: The first pause before starting a worker again after one failed to start; doubles.
FIRST_RETRY_DELAY = 0.5
#: With --reload: seconds a stopped server has to finish its responses before
#: it is told again (which makes it skip the waiting), and again before SIGKILL.
RELOAD_GRACE = 3.0
#: With --reload: how long a stopped server serves the connections it accepted
#: just before SIGTERM (see process.HANDOVER_DELAY).
RELOAD_HANDOVER_DELAY = 0.2

_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


class Supervisor:
    """Runs *workers* worker processes on the endpoints of *config*.

    :param cli_arguments: the command line, handed to every worker unchanged.
    :param config: the settings built from it (the supervisor binds its endpoints).
    :param workers: how many workers serve at once.
    :param watcher: with ``--reload``, what tells of changed files (``workers`` is then 1).
    :param announce: where to print the listening addresses once the first
        workers are ready (standard output for ``--port 0``).
    """

    def __init__(
        self,
        cli_arguments: Sequence[str],
        config: Config,
        *,
        workers: int,
        watcher: Watcher | None = None,
        announce: TextIO | None = None,
    ) -> None:
        if workers < 1:
            raise ConfigurationError(f"workers must be at least 1, not {workers}")
        if watcher is not None and workers != 1:
            raise ConfigurationError("--reload runs one server process; --workers must be 1")
        self.cli_arguments = list(cli_arguments)
        self.config = config
        self.size = workers
        self.watcher = watcher
        self.announce = announce
        self.sockets: list[socket.socket] = []
        #: Live worker processes by pid.
        self.workers: dict[int, WorkerProcess] = {}
        self._selector = selectors.DefaultSelector()
        self._generations = itertools.count()
        self._generation = next(self._generations)  # the generation serving now
        self._next_generation: int | None = None  # being started by a replacement
        self._replace_again = False
        self._started = False  # the first generation has been ready
        self._failures = 0  # workers in a row that failed before they were ready
        self._stopping = False
        self._exit_status = 0
        self._start_after_stop = False  # --reload: start a server once the old one exits
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_order = itertools.count()
        self._changes: queue.SimpleQueue[set[str]] = queue.SimpleQueue()
        self._watch_stop = threading.Event()
        self._watch_thread: threading.Thread | None = None
        # What the logs call a worker: with --reload there is one, "the server process".
        self._noun = "worker" if watcher is None else "server process"
        self._group = "workers" if watcher is None else "server process"

    # -- running ----------------------------------------------------------------------------

    def run(self) -> int:
        """Bind, supervise until told to stop, clean up; the exit status."""
        try:
            self._check_tls_files()
            for endpoint in self.config.parsed_endpoints:
                self.sockets.append(bind(endpoint, self.config.backlog))
        except ConfigurationError as exc:
            self._close_sockets()
            logger.error("%s", exc)
            print(f"channels-server: {exc}", file=sys.stderr)
            return 1
        signal_reader, signal_writer = socket.socketpair()
        wake_reader, wake_writer = socket.socketpair()
        for end in (signal_reader, signal_writer, wake_reader, wake_writer):
            end.setblocking(False)
        previous_handlers = {signum: signal.getsignal(signum) for signum in _HANDLED_SIGNALS}
        previous_wakeup = signal.set_wakeup_fd(signal_writer.fileno(), warn_on_full_buffer=False)
        try:
            for signum in _HANDLED_SIGNALS:
                signal.signal(signum, _note_signal)
            self._selector.register(
                signal_reader, selectors.EVENT_READ, lambda: self._on_signals(signal_reader)
            )
            self._selector.register(
                wake_reader, selectors.EVENT_READ, lambda: self._on_changes(wake_reader)
            )
            if self.watcher is not None:
                self._start_watching(self.watcher, wake_writer)
            what = "the server process" if self.watcher is not None else f"{self.size} worker(s)"
            logger.info("Supervisor %d starting %s", os.getpid(), what)
            for _ in range(self.size):
                self._spawn(self._generation)
            self._loop()
        finally:
            self._watch_stop.set()
            for worker in list(self.workers.values()):
                worker.kill()
                worker.popen.wait()
                worker.close()
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            self._selector.close()
            for end in (signal_reader, signal_writer, wake_reader, wake_writer):
                end.close()
            self._close_sockets()
            if self._watch_thread is not None:
                self._watch_thread.join(5)
        logger.info("Supervisor %d exiting with status %d", os.getpid(), self._exit_status)
        return self._exit_status

    def _loop(self) -> None:
        while not (self._stopping and not self.workers):
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            for key, _ in self._selector.select(timeout):
                key.data()
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, action = heapq.heappop(self._timers)
                action()
            # SIGCHLD may be coalesced or arrive before the process can be
            # waited for: look at every worker each turn (there are few).
            self._reap()

    def _after(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_order), action))

    def _check_tls_files(self) -> None:
        # The workers load the certificates themselves; loading them once
        # here turns a bad file into one error before any worker starts.
        checked: set[TLSSettings] = set()
        http2 = http2_enabled(self.config)
        for endpoint in self.config.parsed_endpoints:
            if endpoint.tls is not None and endpoint.tls not in checked:
                checked.add(endpoint.tls)
                server_context(endpoint.tls, http2=http2)

    def _close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()
        for endpoint in self.config.parsed_endpoints:
            if endpoint.kind == "unix" and endpoint.path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(endpoint.path)

    # -- workers ----------------------------------------------------------------------------

    def _spawn(self, generation: int) -> None:
        if self._stopping or generation not in (self._generation, self._next_generation):
            return  # A retry that a replacement or a stop has overtaken.
        # With --reload the one server is stopped before the next starts:
        # nobody takes new connections during its handover, so it is short.
        handover = RELOAD_HANDOVER_DELAY if self.watcher is not None else HANDOVER_DELAY
        try:
            worker = WorkerProcess(self.cli_arguments, self.sockets, generation, handover)
        except OSError as exc:  # No process or descriptor to spare, for one.
            logger.error("Cannot start a %s: %s", self._noun, exc)
            self._failed_to_start(None, generation, f"could not be started ({exc})")
            return
        self.workers[worker.pid] = worker
        assert worker.control is not None
        self._selector.register(
            worker.control, selectors.EVENT_READ, lambda: self._on_control(worker)
        )
        logger.info("Started %s %d", self._noun, worker.pid)

    def _on_control(self, worker: WorkerProcess) -> None:
        data = worker.receive()
        if data is None:
            return
        if not data:
            self._forget_control(worker)
            return
        if worker.state is WorkerState.STARTING:
            worker.state = WorkerState.READY
            self._on_ready(worker)

    def _forget_control(self, worker: WorkerProcess) -> None:
        if worker.control is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(worker.control)
            worker.close()

    def _count(self, generation: int, state: WorkerState) -> int:
        return sum(
            1
            for worker in self.workers.values()
            if worker.generation == generation and worker.state is state
        )

    def _on_ready(self, worker: WorkerProcess) -> None:
        self._failures = 0
        logger.info("%s %d ready", self._noun.capitalize(), worker.pid)
        if worker.generation == self._generation and not self._started:
            if self._count(self._generation, WorkerState.READY) >= self.size:
                self._started = True
                self._announce()
                self._replace_if_asked()
        elif (
            worker.generation == self._next_generation
            and self._count(worker.generation, WorkerState.READY) >= self.size
        ):
            self._finish_replacement()

    def _announce(self) -> None:
        if self.announce is None:
            return
        for sock, endpoint in zip(self.sockets, self.config.parsed_endpoints, strict=True):
            where = describe_socket(sock, tls=endpoint.tls is not None)
            print(f"Listening on {where}", file=self.announce, flush=True)

    def _reap(self) -> None:
        for worker in list(self.workers.values()):
            returncode = worker.poll()
            if returncode is not None:
                del self.workers[worker.pid]
                self._forget_control(worker)
                self._on_exit(worker, describe_exit(returncode), returncode)

    def _on_exit(self, worker: WorkerProcess, how: str, returncode: int) -> None:
        if self._stopping or worker.state is WorkerState.STOPPING:
            log = logger.info if returncode == 0 else logger.warning
            log("%s %d %s", self._noun.capitalize(), worker.pid, how)
            if self._start_after_stop and not self.workers:
                self._start_after_stop = False
                self._spawn(self._generation)
        elif worker.state is WorkerState.STARTING:
            self._failed_to_start(worker.pid, worker.generation, how)
        elif self.watcher is not None:
            logger.error("The server process %d %s; waiting for a file to change", worker.pid, how)
        else:
            logger.warning("Worker %d %s; starting a replacement", worker.pid, how)
            self._spawn(worker.generation)

    def _failed_to_start(self, pid: int | None, generation: int, how: str) -> None:
        """A worker of *generation* ended (or could not be started) before it was ready."""
        who = f"{self._noun} {pid}" if pid is not None else f"a new {self._noun}"
        if self.watcher is not None:
            logger.error(
                "The %s %s before it was ready (its error is above); waiting for a file to change",
                who,
                how,
            )
            return
        if generation == self._next_generation:
            logger.error(
                "Replacing the workers failed: %s %s before it was ready (its error "
                "is above); the old workers keep serving",
                who,
                how,
            )
            for other in self.workers.values():
                if other.generation == generation and other.state is not WorkerState.STOPPING:
                    other.stop()
            self._next_generation = None
            self._replace_if_asked()
            return
        if not self._started:
            logger.error("The %s %s before it was ready (its error is above); stopping", who, how)
            self._stop(1)
            return
        self._failures += 1
        if self._failures >= MAX_STARTUP_FAILURES:
            logger.error(
                "The %s %s before it was ready; %d workers in a row failed to start, stopping",
                who,
                how,
                self._failures,
            )
            self._stop(1)
            return
        delay = FIRST_RETRY_DELAY * 2 ** (self._failures - 1)
        logger.warning(
            "The %s %s before it was ready (its error is above); starting another in %.1fs",
            who,
            how,
            delay,
        )
        self._after(delay, lambda: self._spawn(generation))

    # -- replacing ----------------------------------------------------------------------------

    def _replace(self) -> None:
        """SIGHUP: new workers first, then the old ones drain."""
        if self._stopping:
            return
        if self.watcher is not None:
            self._restart("SIGHUP")
            return
        if self._next_generation is not None or not self._started:
            # Once the replacement under way is done (the new workers may
            # already be running the old code).
            self._replace_again = True
            return
        self._next_generation = next(self._generations)
        logger.info("Received SIGHUP; starting %d new worker(s) to replace the old", self.size)
        for _ in range(self.size):
            self._spawn(self._next_generation)

    def _finish_replacement(self) -> None:
        assert self._next_generation is not None
        new = self._next_generation
        old = [
            worker
            for worker in self.workers.values()
            if worker.generation != new and worker.state is not WorkerState.STOPPING
        ]
        logger.info(
            "New workers ready; stopping the old ones (%s)",
            ", ".join(str(worker.pid) for worker in old) or "none",
        )
        for worker in old:
            worker.stop()
            self._escalate_later(worker, self._drain_time())
        self._generation = new
        self._next_generation = None
        self._replace_if_asked()

    def _replace_if_asked(self) -> None:
        if self._replace_again:
            self._replace_again = False
            self._replace()

    def _restart(self, reason: str) -> None:
        """--reload: stop the server process, then start a new one."""
        if self._stopping:
            return
        logger.info("%s; restarting the server", reason)
        running = [w for w in self.workers.values() if w.state is not WorkerState.STOPPING]
        for worker in running:
            worker.stop()
            self._escalate_later(worker, RELOAD_GRACE, force_first=True)
        self._generation = next(self._generations)
        if self.workers:
            self._start_after_stop = True
        else:
            self._spawn(self._generation)

    def _drain_time(self) -> float:
        # The worker's own limits: responses, then application tasks, then lifespan shutdown.
        config = self.config
        return 2 * config.shutdown_timeout + config.application_close_timeout + 5

    def _escalate_later(
        self, worker: WorkerProcess, delay: float, *, force_first: bool = False
    ) -> None:
        def escalate() -> None:
            if self.workers.get(worker.pid) is not worker:
                return
            if force_first and worker.signals_sent < 2:
                logger.warning(
                    "%s %d still running; telling it again", self._noun.capitalize(), worker.pid
                )
                worker.stop()
                self._after(delay, escalate)
                return
            logger.warning(
                "%s %d did not exit in time; killing it", self._noun.capitalize(), worker.pid
            )
            worker.kill()

        self._after(delay, escalate)

    # -- signals and changes --------------------------------------------------------------------

    def _on_signals(self, reader: socket.socket) -> None:
        try:
            data = reader.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            if signum in (signal.SIGTERM, signal.SIGINT):
                self._on_stop_signal(signal.Signals(signum).name)
            elif signum == signal.SIGHUP:
                self._replace()
            # SIGCHLD: the loop reaps every turn.

    def _on_stop_signal(self, name: str) -> None:
        if self._stopping:
            logger.warning("Received %s again; telling the %s to stop now", name, self._group)
            for worker in self.workers.values():
                worker.stop()
            return
        logger.info("Received %s; stopping the %s gracefully", name, self._group)
        self._stop(0)

    def _stop(self, status: int) -> None:
        self._stopping = True
        self._exit_status = status
        self._watch_stop.set()
        for worker in self.workers.values():
            # One already draining (replaced by SIGHUP) goes on draining: a
            # second SIGTERM would cut that short.
            if worker.state is not WorkerState.STOPPING:
                worker.stop()
                self._escalate_later(worker, self._drain_time())
        # The workers close their copies as they start draining; with the
        # supervisor's closed too, new connections are refused rather than
        # left waiting in a queue nobody accepts from.
        for sock in self.sockets:
            sock.close()

    def _start_watching(self, watcher: Watcher, wake: socket.socket) -> None:
        def watch() -> None:
            try:
                for changed in watcher.changes(self._watch_stop):
                    self._changes.put(changed)
                    with contextlib.suppress(OSError):
                        wake.send(b"c")
            except Exception:  # Logged; the server keeps running without reloading.
                logger.exception("Watching files for --reload failed; reloading has stopped")

        self._watch_thread = threading.Thread(target=watch, name="reload-watcher", daemon=True)
        self._watch_thread.start()

    def _on_changes(self, reader: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            reader.recv(4096)
        changed: set[str] = set()
        while True:
            try:
                changed |= self._changes.get_nowait()
            except queue.Empty:
                break
        if not changed:
            return
        cwd = os.getcwd()
        names = sorted(os.path.relpath(path, cwd) for path in changed)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        self._restart(f"Changed: {shown}")


def _note_signal(signum: int, frame: FrameType | None) -> None:
    """Signal handler: nothing to do, set_wakeup_fd has written the signal's number."""
