"""One daemon per data directory.

Two relays on one SQLite queue would each free the other's leases at start
and deliver the same recipients twice. The daemon therefore holds an
exclusive lock on ``postroom.lock`` in its data directory for as long as it
runs; the kernel drops the lock when the process dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from postroom.errors import StorageError

LOCK_NAME = "postroom.lock"


class DataDirLock:
    """An exclusive, advisory lock on a data directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise `StorageError` naming the holder's pid."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot create {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise StorageError(
                f"another postroom (pid {holder}) is running with data_dir "
                f"{self.path.parent.resolve()}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
