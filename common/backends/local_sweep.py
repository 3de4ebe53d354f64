"""Sweeping the ``local`` backend's temp folders: what a killed upload left behind.

A file in a user's ``.tmp/`` untouched for longer than any honest upload can be idle is a
dead upload's and goes: at start, and then by the uploads themselves at most once per
interval for all the processes sharing the data folder (a marker file under ``flock``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("rds.local")
TEMP_DIR = ".tmp"
SWEEP_MARKER = ".sweep"  # in each area: the last sweep's time, and the lock sweepers take


def sweep_temp(area: Path, max_age: float, now: float) -> tuple[int, int]:
    """Remove the files in every ``<area>/<user>/.tmp/`` whose mtime is more than
    ``max_age`` before ``now``; (files, bytes) removed. A file being written has a recent
    mtime (every chunk moves it) and is never touched; folders are left in place (an
    upload may be about to write into one)."""
    files = size = 0
    try:
        users = os.scandir(area)
    except (FileNotFoundError, NotADirectoryError):
        return 0, 0
    with users:
        for user in users:
            if not user.is_dir(follow_symlinks=False):
                continue
            try:
                entries = os.scandir(os.path.join(user.path, TEMP_DIR))
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime <= max_age:
                            continue
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        continue  # renamed into place or removed meanwhile
                    files += 1
                    size += info.st_size
    return files, size


class TempSweeper:
    """Sweeps one area's temp folders at start and then at most once per ``interval``.

    ``maybe`` is called by every upload and costs one comparison until this process's
    next sweep is due; then one thread of the process (a non-blocking lock) takes the
    area's marker file with a non-blocking ``flock``, so two processes never sweep at once
    (the loser skips, it does not wait), and sweeps only if the marker says no process
    swept within ``interval``. The clock is injected; the file system's mtimes are
    compared with it.
    """

    def __init__(
        self,
        area: Path,
        max_age: float,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.area = area
        self.max_age = max_age
        self.interval = interval
        self.clock = clock
        self._next = 0.0  # this process's next look at the marker; 0: at the first upload
        self._busy = threading.Lock()

    def maybe(self) -> None:
        """Sweep if due; never fails the caller (a sweep error is logged)."""
        if self.clock() >= self._next:
            self.sweep(force=False)

    def sweep(self, *, force: bool = True) -> None:
        """Sweep now (``force``: whenever another process swept last, as at start)."""
        if not self._busy.acquire(blocking=False):
            return  # another thread of this process is at it
        try:
            self._sweep_shared(force)
        except OSError as exc:
            log.warning("local.sweep.failed area=%s error=%s", self.area.name, exc.strerror)
        finally:
            self._busy.release()

    def _sweep_shared(self, force: bool) -> None:
        now = self.clock()
        self._next = now + self.interval
        if not self.area.is_dir():
            return  # nothing stored yet, nothing left behind
        with open(self.area / SWEEP_MARKER, "a+", encoding="ascii") as marker:
            try:
                fcntl.flock(marker, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process sweeps right now
            marker.seek(0)
            try:
                last = float(marker.read().strip() or 0)
            except ValueError:
                last = 0.0
            if not force and now - last < self.interval:
                self._next = last + self.interval  # someone else swept: look again then
                return
            files, size = sweep_temp(self.area, self.max_age, now)
            marker.seek(0)
            marker.truncate()
            marker.write(repr(now))
        if files:
            log.info("local.swept area=%s files=%d bytes=%d", self.area.name, files, size)
