"""Device selection: CUDA when available, else CPU; never hard-coded."""
import torch

from utils.errors import InputError


def resolve_device(name="auto"):
    """Return a ``torch.device`` for ``name`` ("auto", "cpu", "cuda", "cuda:1", ...)."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device '{name}' was asked for but CUDA is not available; use --device cpu or auto")
    return device
