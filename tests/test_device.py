"""Device selection and the CPU memory setting."""
import sys

import pytest
import torch

from utils.device import keep_freed_memory, resolve_device
from utils.errors import InputError


def test_auto_picks_cuda_only_when_available():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_asking_for_missing_cuda_is_one_clear_error():
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux only")
def test_keeping_freed_memory_applies_and_large_tensors_still_work():
    assert keep_freed_memory() is True
    for _ in range(3):
        block = torch.ones(64, 1024, 1024)  # 256 MB, allocated and freed each time
        assert float(block[-1, -1, -1]) == 1.0
        del block


def test_keeping_freed_memory_is_a_no_op_off_the_cpu():
    assert keep_freed_memory("meta") is False
    assert keep_freed_memory(torch.device("cuda")) is False
