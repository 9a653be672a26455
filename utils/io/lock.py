"""An advisory lock on an output folder, so that two runs never write one folder at the same time.

The lock is ``fcntl.flock`` on a small file in the folder: the operating system releases it when the process
ends in any way (SIGKILL and crashes included), so a lock can never stay stuck; the file itself is left behind
and means nothing once no process holds it.
"""
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; folders are then not locked
    fcntl = None

LOCK_NAME = ".lock"


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[bool]:
    """Try to lock ``folder`` (created when missing) without waiting.

    Yields True while this process holds the lock, False when another process holds it (nothing is locked then).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield True
        return
    descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())  # who holds it, for a person looking
        yield True
    finally:
        os.close(descriptor)  # closing releases the lock
