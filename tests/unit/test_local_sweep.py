"""The local backend sweeps what dead uploads left in its ``.tmp`` folders, and nothing else.

A dead upload is played by a temp file whose mtime is old (a killed process never touched it
again); a live one by a file written a moment ago, or by the upload running right now. The
clock is injected; no test waits. The kill of a real process is in
``tests/e2e/test_leftovers_e2e.py``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.backends.local import LocalArchive, LocalStorage, user_dir
from common.backends.local_sweep import SWEEP_MARKER, sweep_temp
from common.config import load_settings
from common.errors import ConfigError
from common.identity import Identity
from common.streams import Upload
from tests.support.clock import Clock

WHO = Identity("alice@cloud.example.org")
HOUR = 3600.0


def leftover(area: Path, user: str, age: float, size: int = 1000) -> Path:
    """A temp file as an upload leaves it, last written ``age`` seconds ago."""
    tmp = user_dir(area, user) / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / os.urandom(16).hex()
    path.write_bytes(b"x" * size)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def storage(data: Path, clock: Clock, **kw: float) -> LocalStorage:
    return LocalStorage(data, temp_max_age=HOUR, sweep_interval=600.0, clock=clock, **kw)


def put(backend: LocalStorage, path: str, chunks: Iterator[bytes] | None = None) -> None:
    backend.store_file(WHO, path, Upload(path, chunks or iter([b"data"])))


def test_start_sweeps_dead_uploads_and_keeps_fresh_ones(tmp_path: Path, caplog) -> None:
    clock = Clock(time.time())  # the wall clock, frozen; mtimes are real
    dead = [
        leftover(tmp_path / "storage", "alice", 2 * HOUR, size=5000),
        leftover(tmp_path / "storage", "x" * 300, 2 * HOUR),  # a hashed user folder
        leftover(tmp_path / "projects", "bob", 2 * HOUR),
    ]
    fresh = [
        leftover(tmp_path / "storage", "alice", 60),
        leftover(tmp_path / "projects", "bob", HOUR - 60),
    ]
    (tmp_path / "storage" / "u-alice" / "keep.bin").write_bytes(b"a user's file")
    caplog.set_level(logging.INFO, "rds.local")
    storage(tmp_path, clock).login()
    assert dead[0].exists() is False and dead[1].exists() is False
    assert dead[2].exists()  # the archive's area is the archive's to sweep
    LocalArchive(tmp_path, temp_max_age=HOUR, clock=clock).login()
    assert not dead[2].exists()
    assert all(p.exists() for p in fresh)
    assert (tmp_path / "storage" / "u-alice" / "keep.bin").exists()
    assert "local.swept area=storage files=2 bytes=6000" in caplog.text
    assert "alice" not in caplog.text  # counts, not users or names


def test_uploads_sweep_on_a_schedule(tmp_path: Path) -> None:
    clock = Clock(time.time())  # the wall clock, frozen; mtimes are real
    backend = storage(tmp_path, clock)
    backend.login()
    dead = leftover(tmp_path / "storage", "alice", 2 * HOUR)  # killed after the start
    fresh = leftover(tmp_path / "storage", "bob", 60)
    put(backend, "a.txt")
    assert dead.exists(), "swept at start less than an interval ago: not yet"
    clock.now += 600
    put(backend, "b.txt")
    assert not dead.exists() and fresh.exists()
    assert backend.list_folder(WHO, "") == ["/a.txt", "/b.txt"]


def test_an_upload_being_written_is_never_touched(tmp_path: Path) -> None:
    clock = Clock(time.time())  # the wall clock, frozen; mtimes are real
    backend = storage(tmp_path, clock)
    tmp = user_dir(tmp_path / "storage", WHO.user) / ".tmp"

    def slow() -> Iterator[bytes]:
        yield b"first half "
        (in_flight,) = tmp.iterdir()
        # every sweep there is, right now, while this upload is half written
        assert sweep_temp(tmp_path / "storage", HOUR, clock()) == (0, 0)
        backend.sweeper.sweep()
        assert in_flight.exists()
        yield b"second half"

    put(backend, "big.bin", slow())
    assert backend.open_file(WHO, "big.bin").chunks is not None
    assert list(tmp.iterdir()) == []


def test_two_processes_never_sweep_at_once_nor_twice_in_an_interval(tmp_path: Path) -> None:
    clock = Clock(time.time())  # the wall clock, frozen; mtimes are real
    first, second = storage(tmp_path, clock), storage(tmp_path, clock)  # two workers
    (tmp_path / "storage").mkdir()
    first.login()
    dead = leftover(tmp_path / "storage", "alice", 2 * HOUR)
    clock.now += 600
    with open(tmp_path / "storage" / SWEEP_MARKER) as marker:
        fcntl.flock(marker, fcntl.LOCK_EX)  # a third process is sweeping right now
        put(second, "a.txt")  # does not wait for it, does not sweep
        assert dead.exists()
    put(first, "b.txt")  # its own schedule is due: it sweeps, and notes the time
    assert not dead.exists()
    again = leftover(tmp_path / "storage", "alice", 2 * HOUR)
    clock.now += 300
    put(second, "c.txt")  # due by its own count, but `first` swept 300 s ago: skipped
    assert again.exists()
    clock.now += 300
    put(second, "d.txt")
    assert not again.exists()


def test_a_sweep_that_fails_never_fails_the_upload(tmp_path: Path, caplog) -> None:
    clock = Clock(time.time())  # the wall clock, frozen; mtimes are real
    backend = storage(tmp_path, clock)
    put(backend, "a.txt")  # the area exists now
    (tmp_path / "storage" / SWEEP_MARKER).unlink(missing_ok=True)
    (tmp_path / "storage" / SWEEP_MARKER).mkdir()  # the marker cannot be opened
    clock.now += 600
    put(backend, "b.txt")
    assert "local.sweep.failed area=storage" in caplog.text
    assert backend.list_folder(WHO, "") == ["/a.txt", "/b.txt"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOCAL_TEMP_MAX_AGE": "ten"}, "LOCAL_TEMP_MAX_AGE must be a whole number"),
        ({"LOCAL_TEMP_MAX_AGE": "5"}, "LOCAL_TEMP_MAX_AGE must be between 60"),
        ({"LOCAL_SWEEP_INTERVAL": "0"}, "LOCAL_SWEEP_INTERVAL must be between 1"),
        (
            {"LOCAL_TEMP_MAX_AGE": "600", "CONNECTOR_READ_TIMEOUT": "900"},
            r"LOCAL_TEMP_MAX_AGE \(600 s\) must be longer than CONNECTOR_READ_TIMEOUT \(900 s\)",
        ),
    ],
)
def test_settings_are_checked_at_start(tmp_path: Path, env, message: str) -> None:
    settings = load_settings({"CONNECTOR_CONFIG": "", "CONNECTOR_DATA_DIR": str(tmp_path), **env})
    with pytest.raises(ConfigError, match=message):
        LocalStorage.from_settings(settings)


def test_settings_defaults(tmp_path: Path) -> None:
    settings = load_settings({"CONNECTOR_CONFIG": "", "CONNECTOR_DATA_DIR": str(tmp_path)})
    backend = LocalArchive.from_settings(settings)
    assert (backend.sweeper.max_age, backend.sweeper.interval) == (3600, 600)
    assert backend.doi_prefix == "10.5072"
