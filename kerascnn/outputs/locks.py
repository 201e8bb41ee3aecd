"""A lock for the folders that training writes into: one run at a time per folder, in any process."""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from kerascnn.errors import UserError
from kerascnn.outputs import store


class FolderLock:
    """Holds `folder/.lock` (flock, exclusive) while a run writes into `folder`.

    A second holder, in any process, gets UserError at once. The kernel drops the lock when its
    holder dies, even by SIGKILL, so a killed run never leaves it stuck. The folder is made if
    missing and removed again if the run leaves it empty; the lock file is removed on release.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self._fd: int | None = None
        self._created: list[Path] = []

    def __enter__(self) -> "FolderLock":
        with store.os_errors(f"creating folder {self.folder}"):
            self._created = store.make_parents(self.folder)
        try:
            with store.os_errors(f"locking {self.folder}"):
                self._fd = self._acquire()
                os.ftruncate(self._fd, 0)
                os.write(self._fd, f"{os.getpid()}\n".encode())
        except BaseException:
            self.__exit__()
            raise
        return self

    def _acquire(self) -> int:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                pid = f" (pid {holder})" if holder.isdigit() else ""
                raise UserError(f"another kerascnn run is writing into {self.folder}{pid}; "
                                f"wait for it or choose another --out") from None
            except BaseException:
                os.close(fd)
                raise
            # The last holder removes the file on release: make sure we locked the one on disk.
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    return fd
            os.close(fd)

    def __exit__(self, *exc_info) -> None:
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # while still held, so no one locks a file about to vanish
            os.close(self._fd)
            self._fd = None
        store.remove_made(self._created)
        self._created = []
