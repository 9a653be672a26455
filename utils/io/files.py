"""Atomic file writing: every output goes to a temporary name and is renamed when complete.

Temporary names carry the writer's process id and a number unique within the process (``mesh.tmp-<pid>-<n>.obj``),
so two threads writing one file at once never share one; a name left by a process that was killed (SIGKILL, power
loss) is removed by ``sweep_temporaries`` on the next run of the step that writes there.
"""
from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from utils.errors import UNWRITABLE, InputError

if TYPE_CHECKING:
    import torch


TEMP_MARK = ".tmp-"
_TEMP_PID = re.compile(re.escape(TEMP_MARK) + r"(\d+)")
_TEMP_NUMBERS = itertools.count()  # next() on it is atomic: each atomic_path of the process gets its own number


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary name keeps the suffix (``mesh.tmp-123-0.obj``) so that writers
    that choose the format by extension (OpenCV, matplotlib) still work; it is unique to the call
    (``mesh.tmp-<pid>-<n>.obj``), so threads writing one file at once do not collide: the last rename wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}{TEMP_MARK}{os.getpid()}-{next(_TEMP_NUMBERS)}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        # a write through an open file names no file, and shutil's copy names its source: name the output
        raise OSError(err.errno, err.strerror, str(path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()


STALE_AFTER = 24 * 3600  # seconds; an older temporary file is swept even if its pid is alive (pids are reused)


def _process_alive(pid):
    """True when a process with this id exists (signal 0 tests without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def sweep_temporaries(folder: str | Path, recursive: bool = True,
                      log: Callable[[str], None] | None = None) -> list[Path]:
    """Remove the temporary files under ``folder`` left by writers that died (their pid is gone) or that are older
    than ``STALE_AFTER``; a live writer's files stay. ``log``: called with one line when any were removed.

    Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f"*{TEMP_MARK}*"
    removed = []
    for path in folder.rglob(pattern) if recursive else folder.glob(pattern):
        match = _TEMP_PID.search(path.name)
        if not match or not path.is_file():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile
            stale = time.time() - path.stat().st_mtime > STALE_AFTER
            if stale or not _process_alive(int(match[1])):
                path.unlink()
                removed.append(path)
    if removed and log:
        log(f"{folder}: removed {len(removed)} temporary file(s) left by an interrupted run")
    return removed


def check_writable(folder: str | Path, flag: str | None) -> None:
    """InputError (one line, naming the folder and what to do) unless files can be created in ``folder``: called
    before any work starts, not after it. Nothing is left behind: a folder not made yet is checked through its
    nearest existing parent. flag: the option that chooses the folder, or None when none does."""
    folder = Path(folder).absolute()
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file, not a folder")
        probe = existing / f".write-check{TEMP_MARK}{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        fix = f"choose another folder with {flag} or make it writable" if flag else "make it writable"
        raise InputError(f"{folder}: cannot write there ({reason}); {fix}") from None


def is_stale(target: str | Path, sources: Iterable[str | Path]) -> bool:
    """True when ``target`` is missing or older than any existing file in ``sources``."""
    target = Path(target)
    if not target.is_file():
        return True
    newest = max((Path(s).stat().st_mtime for s in sources if Path(s).is_file()), default=0.0)
    return target.stat().st_mtime < newest


def save_text(path: str | Path, text: str) -> None:
    """Write a string to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    save_text(path, json.dumps(obj, indent=2) + "\n")


def save_npy(path: str | Path, array: np.ndarray | torch.Tensor) -> None:
    """Write a numpy array (or tensor) to ``path`` (.npy) atomically."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))


def load_json(path: str | Path) -> Any:
    """Read JSON from ``path``; a missing or malformed file is an ``InputError``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); delete it and re-run the step that writes it") from None
