"""Device selection (CUDA when available, else CPU; never hard-coded) and CPU memory behaviour."""
import ctypes
import ctypes.util

import torch

from utils.errors import InputError

# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
NEVER = -1  # M_TRIM_THRESHOLD of -1: never give heap memory back (mallopt(3))


def resolve_device(name="auto"):
    """Return a ``torch.device`` for ``name`` ("auto", "cpu", "cuda", "cuda:1", ...)."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{name}' was asked for but CUDA is not available; use --device cpu or auto")
    return device


def keep_freed_memory(device="cpu"):
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
