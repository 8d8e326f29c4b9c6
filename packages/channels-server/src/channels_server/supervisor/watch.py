"""Noticing that source files changed, for ``--reload``.

Two watchers yield the same thing, batches of changed paths:

* :class:`WatchfilesWatcher` uses the optional ``watchfiles`` package
  (``pip install 'channels-server[reload]'``): the operating system's file
  notifications (inotify, FSEvents, kqueue), so an idle project costs nothing;
* :class:`PollingWatcher` needs nothing: it compares a snapshot of the
  watched files (modification time, size and inode) twice a second.

Both apply one :class:`FileFilter` (``--reload-include`` and
``--reload-exclude``), and both wait until the files have been quiet for the
reload delay before yielding, so that saving ten files restarts the server
once.
"""

from __future__ import annotations

import fnmatch
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_INCLUDES",
    "FileFilter",
    "PollingWatcher",
    "Watcher",
    "WatchfilesWatcher",
    "make_watcher",
]

#: Files whose change restarts the server unless ``--reload-include`` adds more.
DEFAULT_INCLUDES = ("*.py",)
#: Names never watched: hidden files and folders (``.git``, ``.venv``, editor
#: swap files), compiled Python, editor backups, and folders of generated or
#: third-party files. A folder that matches is not descended into.
DEFAULT_EXCLUDES = (".*", "*.py[cod]", "*~", "__pycache__", "node_modules")

#: How often :class:`PollingWatcher` takes a snapshot, in seconds.
POLL_INTERVAL = 0.5

#: Setting this environment variable to ``1`` makes ``--reload`` poll even
#: when ``watchfiles`` is installed (the test suite covers both watchers this way).
FORCE_POLLING_VARIABLE = "CHANNELS_SERVER_RELOAD_POLLING"


def _matches(patterns: Sequence[str], name: str, relative: str) -> bool:
    # A pattern with a slash is matched against the path below the watched
    # folder ("templates/*.html"); any other against the name alone.
    return any(
        fnmatch.fnmatchcase(relative if "/" in pattern else name, pattern) for pattern in patterns
    )


@dataclass(frozen=True)
class FileFilter:
    """Which files under the watched folders count (``--reload-include`` / ``--reload-exclude``).

    A file counts when its name (or, for a pattern with a ``/``, its path
    below the watched folder) matches an include pattern, no folder between
    it and the watched folder matches an exclude pattern (those folders are
    not even looked into), and it matches no exclude pattern itself, except
    that a file the user's own include patterns name wins over the default
    excludes (``--reload-include .env`` watches ``.env`` although ``.*`` is
    excluded, and ``.git`` stays unwatched). Patterns are :mod:`fnmatch`
    globs, case-sensitive.
    """

    roots: tuple[Path, ...]
    #: The default includes and the user's.
    includes: tuple[str, ...] = DEFAULT_INCLUDES
    #: The user's excludes: they win over every include.
    excludes: tuple[str, ...] = ()
    #: The default excludes: the user's includes win over them for files.
    default_excludes: tuple[str, ...] = DEFAULT_EXCLUDES
    #: The user's includes alone.
    user_includes: tuple[str, ...] = ()

    @classmethod
    def from_options(
        cls, roots: Sequence[str], includes: Sequence[str], excludes: Sequence[str]
    ) -> FileFilter:
        """The filter for the command line's options: theirs added to the defaults."""
        return cls(
            roots=tuple(Path(root).resolve() for root in roots),
            includes=tuple(dict.fromkeys((*DEFAULT_INCLUDES, *includes))),
            excludes=tuple(excludes),
            user_includes=tuple(includes),
        )

    def excluded_folder(self, name: str, relative: str) -> bool:
        """Whether a folder is skipped, with everything in it."""
        return _matches(self.excludes, name, relative) or _matches(
            self.default_excludes, name, relative
        )

    def wanted_file(self, name: str, relative: str) -> bool:
        """Whether a file (already known to sit in no excluded folder) counts."""
        if not _matches(self.includes, name, relative) or _matches(self.excludes, name, relative):
            return False
        return not _matches(self.default_excludes, name, relative) or _matches(
            self.user_includes, name, relative
        )

    def wanted_path(self, path: str) -> bool:
        """Whether a changed *path* (anywhere under a watched folder) counts."""
        absolute = Path(path)
        for root in self.roots:
            try:
                parts = absolute.relative_to(root).parts
            except ValueError:
                continue
            if not parts:
                return False
            for depth in range(len(parts) - 1):
                if self.excluded_folder(parts[depth], "/".join(parts[: depth + 1])):
                    return False
            return self.wanted_file(parts[-1], "/".join(parts))
        return False


class Watcher(Protocol):
    """Yields batches of changed paths until *stop* is set."""

    def changes(self, stop: threading.Event) -> Iterator[set[str]]: ...


#: One file's identity in a snapshot: (modification time in ns, size, inode).
_Stamp = tuple[int, int, int]


class PollingWatcher:
    """Compares snapshots of the watched files; needs no extra package.

    :param file_filter: the folders and patterns to watch.
    :param delay: seconds the files must stay unchanged before a batch is yielded.
    :param interval: seconds between snapshots while nothing changes.
    """

    def __init__(
        self, file_filter: FileFilter, delay: float, interval: float = POLL_INTERVAL
    ) -> None:
        self.filter = file_filter
        self.delay = delay
        self.interval = interval

    def snapshot(self) -> dict[str, _Stamp]:
        """Every watched file with its stamp."""
        found: dict[str, _Stamp] = {}
        for root in self.filter.roots:
            self._scan(str(root), "", found)
        return found

    def _scan(self, folder: str, relative: str, found: dict[str, _Stamp]) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:  # Removed or unreadable meanwhile: it has no files to watch.
            return
        for entry in entries:
            below = f"{relative}/{entry.name}" if relative else entry.name
            try:
                # Symbolic links to folders are not followed (they can loop).
                if entry.is_dir(follow_symlinks=False):
                    if not self.filter.excluded_folder(entry.name, below):
                        self._scan(entry.path, below, found)
                elif self.filter.wanted_file(entry.name, below):
                    stat = entry.stat()
                    found[entry.path] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            except OSError:
                continue

    def changes(self, stop: threading.Event) -> Iterator[set[str]]:
        # The first snapshot is taken now, not at the first next(): what
        # changes after this call is seen.
        return self._changes_since(self.snapshot(), stop)

    def _changes_since(
        self, previous: dict[str, _Stamp], stop: threading.Event
    ) -> Iterator[set[str]]:
        while not stop.wait(self.interval):
            current = self.snapshot()
            changed = _differences(previous, current)
            if not changed:
                continue
            # Wait for the files to settle: an editor or a checkout writes several.
            while not stop.wait(self.delay):
                later = self.snapshot()
                more = _differences(current, later)
                current = later
                if not more:
                    break
                changed |= more
            previous = current
            if not stop.is_set():
                yield changed


def _differences(before: dict[str, _Stamp], after: dict[str, _Stamp]) -> set[str]:
    changed = {path for path, stamp in after.items() if before.get(path) != stamp}
    changed.update(path for path in before if path not in after)
    return changed


class WatchfilesWatcher:
    """File notifications through the ``watchfiles`` package.

    :param file_filter: the folders and patterns to watch.
    :param delay: seconds the files must stay unchanged before a batch is yielded.
    """

    def __init__(self, file_filter: FileFilter, delay: float) -> None:
        self.filter = file_filter
        self.delay = delay

    def changes(self, stop: threading.Event) -> Iterator[set[str]]:
        import watchfiles

        step = max(1, round(self.delay * 1000))
        for batch in watchfiles.watch(
            *self.filter.roots,
            watch_filter=lambda _change, path: self.filter.wanted_path(path),
            step=step,
            # The longest a batch may keep growing while files keep changing.
            debounce=max(1600, step),
            stop_event=stop,
            raise_interrupt=False,
        ):
            yield {path for _change, path in batch}


def make_watcher(file_filter: FileFilter, delay: float) -> Watcher:
    """:class:`WatchfilesWatcher` when ``watchfiles`` is installed, else :class:`PollingWatcher`."""
    if os.environ.get(FORCE_POLLING_VARIABLE, "") not in ("", "0"):
        return PollingWatcher(file_filter, delay)
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        return PollingWatcher(file_filter, delay)
    return WatchfilesWatcher(file_filter, delay)
