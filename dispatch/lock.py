"""One writer per run folder: a lock that a second ``dispatch run`` into the same folder sees.

Two processes running cells into one folder would each finish the grid and rewrite the
tables under the other's feet (cell files are atomic, so nothing is corrupted, but the work
is done twice and the report of one may be replaced by the other's half-way state). So a
run takes ``RUN/.lock`` before it touches the folder and holds it until it returns:

* the lock is the operating system's (``flock`` on POSIX, ``msvcrt.locking`` on Windows),
  held by an open file: when its process dies for any reason (``kill -9``, a crashed
  machine's reboot) the lock is free again. A lock file left behind by a dead process
  (its pid recorded inside) is therefore simply taken over; nothing needs cleaning up;
* the file records who holds it (pid, host, start time, command), so the second process
  refuses with one line naming the holder, or, with ``wait=True`` (``dispatch run
  --wait``), says once that it waits and then queues behind it;
* on release the holder deletes the file *before* closing it. A process that opened the
  old file meanwhile notices (its open file is no longer the one at the path) and tries
  again, so exactly one process holds the lock at any time.

On Windows the file cannot be deleted while open and stays behind (harmless: it is free).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dispatch.errors import ConfigError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

__all__ = ["LOCK_NAME", "FolderLock", "lock_folder", "read_holder"]

LOCK_NAME = ".lock"
_WINDOWS_POLL_S = 0.5


def _try_lock(fd: int, block: bool) -> bool:
    """Lock the open file ``fd``; ``False`` if another process holds it (and not ``block``)."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        except OSError as exc:  # e.g. a file system without locks
            raise ConfigError(
                f"cannot lock the run folder ({exc.strerror}); choose an --out on a local "
                "file system",
                field="--out",
            ) from None
        return True
    while True:  # pragma: no cover - Windows
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            if not block:
                return False
            time.sleep(_WINDOWS_POLL_S)


def _is_current(fd: int, path: Path) -> bool:
    """Whether the locked open file is still the file at ``path`` (not deleted by the
    previous holder between our ``open`` and our lock)."""
    if fcntl is None:  # pragma: no cover - Windows never deletes the file
        return True
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)


def read_holder(path: Path) -> dict[str, Any] | None:
    """Who holds (or last held) the lock at ``path``: the JSON after its first byte."""
    try:
        with open(path, "rb") as fh:
            fh.seek(1)  # byte 0 is the locked byte on Windows
            data = json.loads(fh.read().decode("utf-8") or "null")
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"
        f" ({holder.get('command')})"
    )


class FolderLock:
    """The lock of one folder, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, folder: str | Path, what: str = "dispatch run"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(
        self, wait: bool = False, on_wait: Callable[[str], None] | None = None
    ) -> FolderLock:
        """Take the lock; raise :class:`ConfigError` if another process holds it, unless
        ``wait`` (then block until it is free, calling ``on_wait`` once with the holder)."""
        if self._fd is not None:
            raise RuntimeError("lock already held by this object")
        told = False
        while True:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create {self.path} ({exc.strerror}); choose a writable --out",
                    field="--out",
                ) from None
            try:
                got = _try_lock(fd, block=False)
                if not got:
                    holder = _describe(read_holder(self.path))
                    if not wait:
                        raise ConfigError(
                            f"run folder {self.folder} is in use by {holder}; wait for it to "
                            "finish, pass --wait to queue behind it, or choose another --out",
                            field="--out",
                        )
                    if on_wait is not None and not told:
                        on_wait(holder)
                        told = True
                    got = _try_lock(fd, block=True)
                if got and _is_current(fd, self.path):
                    self._fd = fd
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the previous holder deleted the file meanwhile: try again
        self._record()
        return self

    def _record(self) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] or self.what,
        }
        data = b"\n" + json.dumps(info).encode()
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if fcntl is not None:
            with contextlib.suppress(FileNotFoundError):  # someone removed it by hand
                os.unlink(self.path)  # before closing: see the module docstring
        os.close(fd)  # closing releases the lock

    def __enter__(self) -> FolderLock:
        if self._fd is None:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_folder(
    folder: str | Path, *, wait: bool = False, on_wait: Callable[[str], None] | None = None
) -> FolderLock:
    """Acquire and return the lock of ``folder`` (use as a context manager to release)."""
    return FolderLock(folder).acquire(wait=wait, on_wait=on_wait)
