"""Device selection (CUDA when available, else CPU; never hard-coded) and CPU memory behaviour."""
import ctypes
import ctypes.util
import os
from typing import Callable, Optional, Union

import torch

from utils.errors import InputError

# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
NEVER = -1  # M_TRIM_THRESHOLD of -1: never give heap memory back (mallopt(3))


def resolve_device(name: Optional[Union[str, torch.device]] = "auto") -> torch.device:
    """Return a ``torch.device`` for ``name`` ("auto", "cpu", "cuda", "cuda:1", ...)."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{name}' was asked for but CUDA is not available; use --device cpu or auto")
    return device


def keep_freed_memory(device: Union[str, torch.device] = "cpu") -> bool:
    """Make glibc's malloc reuse freed memory instead of returning it to the system, when computing on the CPU.

    The optimisation allocates and frees the same large tensors (hundreds of MB at 512 px) every iteration;
    by default each one is a fresh mmap whose pages are faulted in and zeroed again, which costs about a quarter
    of the feature network's CPU time. Taking every block from the heap and never trimming it removes that.
    Returns True when applied; a no-op (False) for another ``device`` (its tensors are not in the C heap) and
    on a C library without mallopt.
    """
    if torch.device(device).type != "cpu":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    applied = mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, NEVER)
    return bool(applied)


# run.py's peak memory grows with the mesh: measured 1.4 GB at 22.5k and 2.8 GB at 90k vertices (CPU, 256 px,
# grid reliefs, bench/bench_run_memory.py), 12.9 GB at about 1M vertices; so about 1 GB plus 16 kB per vertex
RUN_BASE_BYTES, RUN_BYTES_PER_VERTEX = 2**30, 16 * 2**10


def run_memory_estimate(vertex_count: int) -> int:
    """Bytes run.py is expected to need for one pair on a mesh of ``vertex_count`` vertices (a rough figure)."""
    return RUN_BASE_BYTES + vertex_count * RUN_BYTES_PER_VERTEX


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new process (Linux's MemAvailable; else free pages), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def warn_if_short_of_memory(what: str, needed: int, log: Callable[[str], None] = print) -> bool:
    """One line when ``needed`` bytes (an estimate) exceed the memory available now; returns True when it warned."""
    available = available_memory()
    if available is None or needed <= available:
        return False
    log(f"warning: {what} is expected to need about {needed / 2**30:.1f} GiB, more than the "
        f"{available / 2**30:.1f} GiB available: expect swapping or the run to be killed; free memory or "
        "simplify the mesh first")
    return True
