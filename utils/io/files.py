"""Atomic file writing: every output goes to a temporary name and is renamed when complete."""
import contextlib
import json
import os
from pathlib import Path

import numpy as np

from utils.errors import InputError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary name keeps the suffix (``mesh.tmp-123.obj``) so that writers
    that choose the format by extension (OpenCV, matplotlib) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_text(path, text):
    """Write a string to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    save_text(path, json.dumps(obj, indent=2) + "\n")


def save_npy(path, array):
    """Write a numpy array (or tensor) to ``path`` (.npy) atomically."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))


def load_json(path):
    """Read JSON from ``path``; a missing or malformed file is an ``InputError``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); delete it and re-run the step that writes it") from None
